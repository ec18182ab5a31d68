package exif

import (
	"encoding/binary"
	"testing"
)

// ifd0 is a TIFF structure whose IFD0 holds the given entries (tag, type, count, value).
func ifd0(bo interface {
	binary.ByteOrder
	binary.AppendByteOrder
}, entries ...[4]uint32) []byte {
	b := make([]byte, 8, 64)
	if bo == binary.LittleEndian {
		copy(b, "II")
	} else {
		copy(b, "MM")
	}
	bo.PutUint16(b[2:], 42)
	bo.PutUint32(b[4:], 8)
	b = bo.AppendUint16(b, uint16(len(entries)))
	for _, e := range entries {
		b = bo.AppendUint16(b, uint16(e[0]))
		b = bo.AppendUint16(b, uint16(e[1]))
		b = bo.AppendUint32(b, e[2])
		b = bo.AppendUint16(b, uint16(e[3]))
		b = bo.AppendUint16(b, 0)
	}
	return bo.AppendUint32(b, 0)
}

func TestOrientation(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want int
	}{
		{"little endian", ifd0(binary.LittleEndian, [4]uint32{0x0100, 3, 1, 640}, [4]uint32{0x0112, 3, 1, 6}), 6},
		{"big endian", ifd0(binary.BigEndian, [4]uint32{0x0112, 3, 1, 8}), 8},
		{"APP1 prefix", append([]byte(Prefix), ifd0(binary.BigEndian, [4]uint32{0x0112, 3, 1, 3})...), 3},
		{"no tag", ifd0(binary.LittleEndian, [4]uint32{0x0100, 3, 1, 640}), 0},
		{"out of range", ifd0(binary.LittleEndian, [4]uint32{0x0112, 3, 1, 9}), 0},
		{"wrong type", ifd0(binary.LittleEndian, [4]uint32{0x0112, 4, 1, 6}), 0},
		{"not TIFF", []byte("\x89PNG\r\n\x1a\n...."), 0},
		{"IFD past the end", []byte("II*\x00\xff\xff\xff\x7f"), 0},
		{"entries past the end", []byte("II*\x00\x08\x00\x00\x00\xff\xff"), 0},
		{"empty", nil, 0},
	}
	for _, c := range cases {
		if got := Orientation(c.data); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func FuzzOrientation(f *testing.F) {
	f.Add(ifd0(binary.LittleEndian, [4]uint32{0x0112, 3, 1, 6}))
	f.Add(ifd0(binary.BigEndian, [4]uint32{0x0100, 3, 1, 6}, [4]uint32{0x0112, 3, 1, 2}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := Orientation(data); o < 0 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}

// A TIFF's ICC profile is the bytes tag 34675 points at; a count past the end is no profile.
func TestICCProfile(t *testing.T) {
	prof := []byte("0123456789 profile bytes")
	b := ifd0(binary.LittleEndian, [4]uint32{0x0112, 3, 1, 1})
	// A second entry by hand: tag 34675, UNDEFINED, count, offset (the profile follows).
	entry := binary.LittleEndian.AppendUint16(nil, 34675)
	entry = binary.LittleEndian.AppendUint16(entry, 7)
	entry = binary.LittleEndian.AppendUint32(entry, uint32(len(prof)))
	off := len(b) + 12
	entry = binary.LittleEndian.AppendUint32(entry, uint32(off))
	b[8] = 2 // two entries
	b = append(append(b[:len(b)-4], entry...), 0, 0, 0, 0)
	b = append(b[:off], prof...)
	if got := ICCProfile(b); string(got) != string(prof) {
		t.Errorf("profile %q, want %q", got, prof)
	}
	binary.LittleEndian.PutUint32(b[8+2+12+4:], 1<<20) // the count, now past the end
	if got := ICCProfile(b); got != nil {
		t.Errorf("a count past the end gave %q", got)
	}
	if got := ICCProfile(ifd0(binary.BigEndian, [4]uint32{0x0112, 3, 1, 6})); got != nil {
		t.Errorf("no tag gave %q", got)
	}
}

// WriteASCII's directory reads back through ASCII, short (inline) and long values alike, with
// nothing after it (no thumbnail directory) and no tag it was not given.
func TestWriteASCIIRoundTrips(t *testing.T) {
	b := WriteASCII(map[uint16]string{Artist: "Ann", Copyright: "© 2026 Ann Example", 0x010F: ""})
	if got := ASCII(b, Artist); got != "Ann" {
		t.Errorf("Artist %q", got)
	}
	if got := ASCII(b, Copyright); got != "© 2026 Ann Example" {
		t.Errorf("Copyright %q", got)
	}
	tiff := b[len(Prefix):]
	if n := binary.BigEndian.Uint16(tiff[8:]); n != 2 {
		t.Errorf("%d entries, want 2 (an empty text is left out)", n)
	}
	if next := binary.BigEndian.Uint32(tiff[8+2+2*12:]); next != 0 {
		t.Errorf("a next directory at %d", next)
	}
	if Orientation(b) != 0 || ASCII(b, 0x010F) != "" {
		t.Error("a tag that was not written reads back")
	}
}
