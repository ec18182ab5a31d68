package media

import (
	"encoding/binary"
	"errors"
)

// heifColour is a HEIF (HEIC, AVIF) file's colour description: the colr property of its primary
// item (ISO/IEC 23008-12 6.5.5), else the first colr the file has (an iPhone's grid image may
// tie it to its tiles). Either an ICC profile (colour type prof or rICC) or nclx code points
// (ITU-T H.273); both nil when the file has no colr.
type heifColour struct {
	icc  []byte
	nclx *nclx
}

// nclx holds the code points sluice uses: the primaries and the transfer characteristics (the
// decoder applies the matrix coefficients and range).
type nclx struct{ primaries, transfer uint16 }

// readHEIFColour walks meta → pitm, iprp → ipco, ipma. Every box size is checked against its
// parent; anything malformed is an error.
func readHEIFColour(data []byte) (heifColour, error) {
	meta, ok, err := child(data, "meta")
	if err != nil || !ok {
		return heifColour{}, err
	}
	if len(meta) < 4 {
		return heifColour{}, errors.New("meta box too short")
	}
	meta = meta[4:] // FullBox: version and flags
	primary, err := primaryItem(meta)
	if err != nil {
		return heifColour{}, err
	}
	iprp, ok, err := child(meta, "iprp")
	if err != nil || !ok {
		return heifColour{}, err
	}
	ipco, ok, err := child(iprp, "ipco")
	if err != nil || !ok {
		return heifColour{}, err
	}
	props, err := boxes(ipco)
	if err != nil {
		return heifColour{}, err
	}
	ipma, _, err := child(iprp, "ipma")
	if err != nil {
		return heifColour{}, err
	}
	indices, err := associations(ipma, primary)
	if err != nil {
		return heifColour{}, err
	}
	for _, i := range indices {
		if i >= 1 && i <= len(props) && props[i-1].typ == "colr" {
			return colr(props[i-1].body)
		}
	}
	for _, p := range props {
		if p.typ == "colr" {
			return colr(p.body)
		}
	}
	return heifColour{}, nil
}

type box struct {
	typ  string
	body []byte
}

// nextBox splits the first ISO BMFF box off data.
func nextBox(data []byte) (box, []byte, error) {
	if len(data) < 8 {
		return box{}, nil, errors.New("truncated box header")
	}
	size, hdr := uint64(binary.BigEndian.Uint32(data)), uint64(8)
	typ := string(data[4:8])
	switch size {
	case 0:
		size = uint64(len(data))
	case 1:
		if len(data) < 16 {
			return box{}, nil, errors.New("truncated box header")
		}
		size, hdr = binary.BigEndian.Uint64(data[8:]), 16
	}
	if size < hdr || size > uint64(len(data)) {
		return box{}, nil, errors.New("box " + typ + " overruns its parent")
	}
	return box{typ: typ, body: data[hdr:size]}, data[size:], nil
}

// boxes splits data into boxes.
func boxes(data []byte) ([]box, error) {
	var out []box
	for len(data) > 0 {
		b, rest, err := nextBox(data)
		if err != nil {
			return nil, err
		}
		out, data = append(out, b), rest
	}
	return out, nil
}

// child is the body of the first box of type typ in data; the boxes after it are not read.
func child(data []byte, typ string) ([]byte, bool, error) {
	for len(data) > 0 {
		b, rest, err := nextBox(data)
		if err != nil {
			return nil, false, err
		}
		if b.typ == typ {
			return b.body, true, nil
		}
		data = rest
	}
	return nil, false, nil
}

// primaryItem reads pitm (0 when the file has none).
func primaryItem(meta []byte) (uint32, error) {
	pitm, ok, err := child(meta, "pitm")
	if err != nil || !ok {
		return 0, err
	}
	switch {
	case len(pitm) >= 6 && pitm[0] == 0:
		return uint32(binary.BigEndian.Uint16(pitm[4:])), nil
	case len(pitm) >= 8:
		return binary.BigEndian.Uint32(pitm[4:]), nil
	}
	return 0, errors.New("pitm box too short")
}

// associations are the (1-based) ipco indices of the properties ipma ties to item.
func associations(ipma []byte, item uint32) ([]int, error) {
	if len(ipma) < 8 {
		return nil, nil
	}
	version, flags := ipma[0], ipma[3]
	n := binary.BigEndian.Uint32(ipma[4:])
	p := ipma[8:]
	for range n {
		var id uint32
		if version < 1 {
			if len(p) < 3 {
				return nil, errors.New("ipma truncated")
			}
			id, p = uint32(binary.BigEndian.Uint16(p)), p[2:]
		} else {
			if len(p) < 5 {
				return nil, errors.New("ipma truncated")
			}
			id, p = binary.BigEndian.Uint32(p), p[4:]
		}
		count := int(p[0])
		p = p[1:]
		width := 1
		if flags&1 != 0 {
			width = 2
		}
		if len(p) < count*width {
			return nil, errors.New("ipma truncated")
		}
		var idx []int
		for i := range count {
			if width == 2 {
				idx = append(idx, int(binary.BigEndian.Uint16(p[2*i:])&0x7fff))
			} else {
				idx = append(idx, int(p[i]&0x7f))
			}
		}
		p = p[count*width:]
		if id == item {
			return idx, nil
		}
	}
	return nil, nil
}

// colr reads a ColourInformationBox.
func colr(body []byte) (heifColour, error) {
	if len(body) < 4 {
		return heifColour{}, errors.New("colr box too short")
	}
	switch string(body[:4]) {
	case "prof", "rICC":
		return heifColour{icc: body[4:]}, nil
	case "nclx":
		if len(body) < 10 {
			return heifColour{}, errors.New("nclx colr box too short")
		}
		return heifColour{nclx: &nclx{primaries: binary.BigEndian.Uint16(body[4:]), transfer: binary.BigEndian.Uint16(body[6:])}}, nil
	}
	return heifColour{}, nil // another colour type: not ours to read
}
