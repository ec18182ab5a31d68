package media

import (
	"encoding/binary"
	"fmt"
)

// jpegSegments calls f with each marker segment of a JPEG before its first scan (the marker and
// the segment's payload), until f returns false or a length overruns the data.
func jpegSegments(data []byte, f func(marker byte, seg []byte) bool) {
	for at := 2; at+4 <= len(data) && data[at] == 0xFF; {
		m := data[at+1]
		switch {
		case m == 0xFF: // fill byte
			at++
			continue
		case m == 0xDA || m == 0xD9: // start of scan, end of image
			return
		case m == 0x01 || (m >= 0xD0 && m <= 0xD8): // no length
			at += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(data[at+2:]))
		if n < 2 || at+2+n > len(data) || !f(m, data[at+4:at+2+n]) {
			return
		}
		at += 2 + n
	}
}

// jpegProcesses names the coding processes of ITU-T T.81 by their SOF marker (table B.1).
var jpegProcesses = map[byte]string{
	0xC0: "baseline", 0xC1: "extended sequential", 0xC2: "progressive", 0xC3: "lossless",
	0xC5: "differential sequential (hierarchical)", 0xC6: "differential progressive (hierarchical)",
	0xC7: "differential lossless (hierarchical)", 0xC9: "arithmetic-coded sequential",
	0xCA: "arithmetic-coded progressive", 0xCB: "arithmetic-coded lossless",
	0xCD: "arithmetic-coded differential sequential", 0xCE: "arithmetic-coded differential progressive",
	0xCF: "arithmetic-coded differential lossless",
}

// decodedProcesses are the SOF markers pkg/jpegscale decodes: baseline, extended sequential and
// progressive, Huffman- or arithmetic-coded.
var decodedProcesses = map[byte]bool{0xC0: true, 0xC1: true, 0xC2: true, 0xC9: true, 0xCA: true}

// jpegUnsupported names what a valid JPEG uses that no decoder here reads (a lossless or
// hierarchical process, a sample precision other than 8 or 12 bits); "" when nothing.
func jpegUnsupported(data []byte) string {
	var why string
	jpegSegments(data, func(m byte, seg []byte) bool {
		process, ok := jpegProcesses[m]
		if !ok {
			return true
		}
		switch {
		case !decodedProcesses[m]:
			why = process + " coding"
		case len(seg) > 0 && seg[0] != 8 && seg[0] != 12:
			why = fmt.Sprintf("%d-bit samples (%s)", seg[0], process)
		}
		return false
	})
	return why
}
