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
