package media

import (
	"encoding/binary"
	"testing"
)

func mkbox(typ string, body ...[]byte) []byte {
	n := 8
	for _, b := range body {
		n += len(b)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(n))
	out = append(out, typ...)
	for _, b := range body {
		out = append(out, b...)
	}
	return out
}

// The colr property tied to the primary item wins over another one; a file without colr has no
// colour description; a box overrunning its parent is an error.
func TestReadHEIFColour(t *testing.T) {
	full := []byte{0, 0, 0, 0}
	nclxP3 := mkbox("colr", []byte("nclx"), []byte{0, 12, 0, 13, 0, 6, 0x80})
	prof := mkbox("colr", []byte("prof"), []byte("ICC bytes"))
	ipco := mkbox("ipco", prof, nclxP3)
	// ipma v0, flags 0: item 1 → property 1 (prof); item 2 → property 2 (nclx).
	ipma := mkbox("ipma", full, []byte{0, 0, 0, 2, 0, 1, 1, 0x81, 0, 2, 1, 0x82})
	file := func(primary byte, ipco []byte) []byte {
		meta := mkbox("meta", full, mkbox("hdlr", full), mkbox("pitm", full, []byte{0, primary}), mkbox("iprp", ipco, ipma))
		return append(mkbox("ftyp", []byte("heic")), meta...)
	}
	c, err := readHEIFColour(file(2, ipco))
	if err != nil || c.nclx == nil || *c.nclx != (nclx{primaries: 12, transfer: 13}) {
		t.Errorf("primary item 2: %+v %v, want its nclx", c, err)
	}
	c, err = readHEIFColour(file(1, ipco))
	if err != nil || string(c.icc) != "ICC bytes" {
		t.Errorf("primary item 1: %+v %v, want its ICC profile", c, err)
	}
	c, err = readHEIFColour(file(1, mkbox("ipco", mkbox("ispe", full))))
	if err != nil || c.icc != nil || c.nclx != nil {
		t.Errorf("no colr: %+v %v", c, err)
	}
	bad := file(1, ipco)
	binary.BigEndian.PutUint32(bad[len(mkbox("ftyp", []byte("heic"))):], 1<<20) // meta's size
	if _, err := readHEIFColour(bad); err == nil {
		t.Error("a meta box overrunning the file was accepted")
	}
}

func FuzzReadHEIFColour(f *testing.F) {
	full := []byte{0, 0, 0, 0}
	ipco := mkbox("ipco", mkbox("colr", []byte("nclx"), []byte{0, 12, 0, 13, 0, 6, 0x80}))
	ipma := mkbox("ipma", full, []byte{0, 0, 0, 1, 0, 1, 1, 0x81})
	f.Add(append(mkbox("ftyp", []byte("heic")), mkbox("meta", full, mkbox("pitm", full, []byte{0, 1}), mkbox("iprp", ipco, ipma))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = readHEIFColour(data)
	})
}
