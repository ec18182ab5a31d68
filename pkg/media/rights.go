package media

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/pkg/exif"
)

// Rights is the authorship a file states, as the recipe's copyright metadata policy keeps it:
// EXIF Artist and Copyright, IPTC By-line, Credit and Copyright Notice, XMP dc:creator and
// dc:rights. Nothing else of a file's metadata (GPS, serial numbers, maker notes, thumbnails,
// editing history) is ever read into it.
type Rights struct {
	Artist          string   `json:"artist,omitempty"`           // EXIF 0x013B
	Copyright       string   `json:"copyright,omitempty"`        // EXIF 0x8298
	ByLine          []string `json:"by_line,omitempty"`          // IPTC 2:80
	Credit          string   `json:"credit,omitempty"`           // IPTC 2:110
	CopyrightNotice string   `json:"copyright_notice,omitempty"` // IPTC 2:116
	Creators        []string `json:"creators,omitempty"`         // XMP dc:creator
	Rights          string   `json:"rights,omitempty"`           // XMP dc:rights (x-default)
}

// Empty reports whether the file stated no authorship.
func (r Rights) Empty() bool {
	return r.Artist == "" && r.Copyright == "" && len(r.ByLine) == 0 && r.Credit == "" &&
		r.CopyrightNotice == "" && len(r.Creators) == 0 && r.Rights == ""
}

// maxRightsText bounds each text kept (a hostile file may state megabytes of "copyright").
const maxRightsText = 2000

// ReadRights reads the authorship a JPEG, PNG, WebP or TIFF states (HEIF files: none read yet).
func ReadRights(f Format, data []byte) Rights {
	var exifData, xmp, iptc []byte
	switch f {
	case JPEG:
		jpegSegments(data, func(m byte, seg []byte) bool {
			switch {
			case m == 0xE1 && bytes.HasPrefix(seg, []byte(exif.Prefix)) && exifData == nil:
				exifData = seg
			case m == 0xE1 && bytes.HasPrefix(seg, []byte(xmpPrefix)) && xmp == nil:
				xmp = seg[len(xmpPrefix):]
			case m == 0xED && bytes.HasPrefix(seg, []byte(photoshopPrefix)) && iptc == nil:
				iptc = photoshopIPTC(seg[len(photoshopPrefix):])
			}
			return true
		})
	case PNG:
		exifData = pngChunk(data, "eXIf")
		xmp = pngXMP(data)
	case WebP:
		exifData, xmp = riffChunk(data, "EXIF"), riffChunk(data, "XMP ")
	case TIFF:
		exifData, xmp, iptc = data, exif.Bytes(data, exif.XMP), exif.Bytes(data, exif.IPTC)
	}
	r := Rights{Artist: clip(exif.ASCII(exifData, exif.Artist)), Copyright: clip(exif.ASCII(exifData, exif.Copyright))}
	r.ByLine, r.Credit, r.CopyrightNotice = readIPTC(iptc)
	r.Creators, r.Rights = readXMP(xmp)
	return r
}

// clip makes a text valid UTF-8 (Latin-1 is the old default of EXIF and IPTC), without control
// characters, at most maxRightsText bytes.
func clip(s string) string {
	if !utf8.ValidString(s) {
		r := make([]rune, 0, len(s))
		for _, b := range []byte(s) {
			r = append(r, rune(b))
		}
		s = string(r)
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	for len(s) > maxRightsText {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return strings.TrimSpace(s)
}

const (
	xmpPrefix       = "http://ns.adobe.com/xap/1.0/\x00"
	photoshopPrefix = "Photoshop 3.0\x00"
)

// pngXMP is the XMP packet of a PNG's iTXt chunk "XML:com.adobe.xmp" (uncompressed).
func pngXMP(data []byte) []byte {
	var found []byte
	for at := 8; at+8 <= len(data) && found == nil; {
		n := int64(binary.BigEndian.Uint32(data[at:]))
		end := int64(at) + 8 + n
		if end > int64(len(data)) {
			return nil
		}
		if string(data[at+4:at+8]) == "iTXt" {
			c := data[at+8 : end]
			const key = "XML:com.adobe.xmp\x00"
			if bytes.HasPrefix(c, []byte(key)) && len(c) > len(key)+2 && c[len(key)] == 0 {
				// compression flag 0, method, then language and translated keyword, each NUL-ended
				rest := c[len(key)+2:]
				if i := bytes.IndexByte(rest, 0); i >= 0 {
					if j := bytes.IndexByte(rest[i+1:], 0); j >= 0 {
						found = rest[i+1+j+1:]
					}
				}
			}
		}
		at = int(end) + 4
	}
	return found
}

// photoshopIPTC is the IPTC-NAA resource (0x0404) of a Photoshop image resource block.
func photoshopIPTC(irb []byte) []byte {
	for len(irb) >= 12 && string(irb[:4]) == "8BIM" {
		id := binary.BigEndian.Uint16(irb[4:])
		name := 1 + int(irb[6]) // a Pascal string, padded to an even size
		name += name % 2
		if 6+name+4 > len(irb) {
			return nil
		}
		size := int64(binary.BigEndian.Uint32(irb[6+name:]))
		start := int64(6 + name + 4)
		if start+size > int64(len(irb)) {
			return nil
		}
		if id == 0x0404 {
			return irb[start : start+size]
		}
		irb = irb[min(start+size+size%2, int64(len(irb))):]
	}
	return nil
}

// readIPTC reads datasets 2:80, 2:110 and 2:116 of IPTC IIM data; text is UTF-8 when 1:90 says
// so, else Latin-1.
func readIPTC(b []byte) (byLine []string, credit, notice string) {
	utf := false
	var raw [][3]string // record, dataset, value
	for len(b) >= 5 && b[0] == 0x1C {
		rec, ds, n := b[1], b[2], int(binary.BigEndian.Uint16(b[3:]))
		if n&0x8000 != 0 || 5+n > len(b) { // extended lengths are for binary data, not these
			break
		}
		v := b[5 : 5+n]
		if rec == 1 && ds == 90 && bytes.Equal(v, []byte("\x1b%G")) {
			utf = true
		}
		raw = append(raw, [3]string{string(rec), string(ds), string(v)})
		b = b[5+n:]
	}
	text := func(v string) string {
		if !utf && !utf8.ValidString(v) {
			return clip(v) // Latin-1, rune by rune
		}
		return clip(strings.ToValidUTF8(v, ""))
	}
	for _, d := range raw {
		if d[0] != "\x02" {
			continue
		}
		switch d[1] {
		case "\x50": // 80
			if t := text(d[2]); t != "" && len(byLine) < 16 {
				byLine = append(byLine, t)
			}
		case "\x6e": // 110
			credit = text(d[2])
		case "\x74": // 116
			notice = text(d[2])
		}
	}
	return byLine, credit, notice
}

const (
	nsDC  = "http://purl.org/dc/elements/1.1/"
	nsRDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
)

// readXMP reads dc:creator's list items and dc:rights (its x-default item, else the first).
func readXMP(packet []byte) (creators []string, rights string) {
	if len(packet) == 0 {
		return nil, ""
	}
	d := xml.NewDecoder(bytes.NewReader(packet))
	var in string // "creator" or "rights" while inside one
	var li, lang string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err != nil { // the end, or XML that stops making sense: what was read stands
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Space == nsDC && (t.Name.Local == "creator" || t.Name.Local == "rights"):
				in = t.Name.Local
			case t.Name.Space == nsRDF && t.Name.Local == "li" && in != "":
				li, lang = "li", ""
				text.Reset()
				for _, a := range t.Attr {
					if a.Name.Local == "lang" {
						lang = a.Value
					}
				}
			}
		case xml.CharData:
			if li != "" && text.Len() < maxRightsText {
				text.Write(t)
			}
		case xml.EndElement:
			switch {
			case t.Name.Space == nsRDF && t.Name.Local == "li" && li != "":
				li = ""
				v := clip(text.String())
				switch {
				case in == "creator" && v != "" && len(creators) < 16:
					creators = append(creators, v)
				case in == "rights" && (rights == "" || lang == "x-default"):
					rights = v
				}
			case t.Name.Space == nsDC && t.Name.Local == in:
				in = ""
			}
		}
	}
	return slices.Compact(creators), rights
}

// EmbedRights writes r into a JPEG rendition: an APP1 Exif segment of Artist and Copyright alone,
// an APP1 XMP packet of dc:creator and dc:rights alone, an APP13 IPTC block of 1:90 (UTF-8),
// 2:80, 2:110 and 2:116 alone; each only when it has something to say. They go after the JFIF
// APP0 segment, if any.
func EmbedRights(jpg []byte, r Rights) ([]byte, error) {
	if len(jpg) < 2 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
		return nil, errors.New("embed rights: not a JPEG")
	}
	var segs []byte
	add := func(marker byte, payload []byte) error {
		if len(payload)+2 > 0xFFFF {
			return errors.New("embed rights: a segment over 64 KB")
		}
		segs = append(segs, 0xFF, marker, byte((len(payload)+2)>>8), byte(len(payload)+2))
		segs = append(segs, payload...)
		return nil
	}
	if r.Artist != "" || r.Copyright != "" {
		if err := add(0xE1, exif.WriteASCII(map[uint16]string{exif.Artist: r.Artist, exif.Copyright: r.Copyright})); err != nil {
			return nil, err
		}
	}
	if len(r.Creators) > 0 || r.Rights != "" {
		if err := add(0xE1, append([]byte(xmpPrefix), writeXMP(r.Creators, r.Rights)...)); err != nil {
			return nil, err
		}
	}
	if len(r.ByLine) > 0 || r.Credit != "" || r.CopyrightNotice != "" {
		if err := add(0xED, append([]byte(photoshopPrefix), writeIPTC(r)...)); err != nil {
			return nil, err
		}
	}
	at := 2
	if len(jpg) >= 6 && jpg[2] == 0xFF && jpg[3] == 0xE0 { // keep JFIF's APP0 first
		at = 4 + int(binary.BigEndian.Uint16(jpg[4:]))
		if at > len(jpg) {
			return nil, errors.New("embed rights: a JFIF segment past the end")
		}
	}
	return slices.Concat(jpg[:at], segs, jpg[at:]), nil
}

func writeXMP(creators []string, rights string) []byte {
	var b bytes.Buffer
	esc := func(s string) { _ = xml.EscapeText(&b, []byte(s)) }
	b.WriteString(`<?xpacket begin="` + "\uFEFF" + `" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">`)
	b.WriteString(`<rdf:RDF xmlns:rdf="` + nsRDF + `"><rdf:Description rdf:about="" xmlns:dc="` + nsDC + `">`)
	if len(creators) > 0 {
		b.WriteString(`<dc:creator><rdf:Seq>`)
		for _, c := range creators {
			b.WriteString(`<rdf:li>`)
			esc(c)
			b.WriteString(`</rdf:li>`)
		}
		b.WriteString(`</rdf:Seq></dc:creator>`)
	}
	if rights != "" {
		b.WriteString(`<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">`)
		esc(rights)
		b.WriteString(`</rdf:li></rdf:Alt></dc:rights>`)
	}
	b.WriteString(`</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>`)
	return b.Bytes()
}

func writeIPTC(r Rights) []byte {
	var iim []byte
	put := func(rec, ds byte, v string) {
		if len(v) > 0x7FFF {
			v = v[:0x7FFF]
		}
		iim = append(iim, 0x1C, rec, ds, byte(len(v)>>8), byte(len(v)))
		iim = append(iim, v...)
	}
	put(1, 90, "\x1b%G") // UTF-8
	for _, b := range r.ByLine {
		put(2, 80, b)
	}
	if r.Credit != "" {
		put(2, 110, r.Credit)
	}
	if r.CopyrightNotice != "" {
		put(2, 116, r.CopyrightNotice)
	}
	irb := append([]byte("8BIM\x04\x04\x00\x00"), binary.BigEndian.AppendUint32(nil, uint32(len(iim)))...)
	irb = append(irb, iim...)
	if len(iim)%2 == 1 {
		irb = append(irb, 0)
	}
	return irb
}
