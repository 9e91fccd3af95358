package enrich

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The operator's text files (interfaces CSV, services) never crash the
// loader: either they load, or the error is a FileError naming the file.
func FuzzLoadFiles(f *testing.F) {
	f.Add([]byte("192.0.2.1,3,xe-0/0/1,\"transit: AS64500\"\n*,1,lo0\n# comment\n"))
	f.Add([]byte("2001:db8::1,4294967295,et-0/0/0\n"))
	f.Add([]byte("http 80/tcp www\nntp 123/udp\nfoo 1/ddp\n# x\n"))
	f.Add([]byte("\"unterminated,1,x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var fe *FileError
		if ifs, err := LoadInterfaces(path); err != nil {
			if !errors.As(err, &fe) || fe.File != path {
				t.Fatalf("interfaces: %T %v", err, err)
			}
		} else if ifs.Len() < 0 {
			t.Fatal("negative length")
		}
		if svc, err := LoadServices(path); err != nil {
			if !errors.As(err, &fe) || fe.File != path {
				t.Fatalf("services: %T %v", err, err)
			}
		} else {
			svc.Lookup(protoTCP, 80)
		}
	})
}
