package media

// OrientPlanes lets the tests turn planes directly.
var OrientPlanes = orientPlanes
