package enrich

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Services maps (protocol, port) to a service name, as /etc/services does.
type Services struct {
	names map[uint32]string // protocol<<16 | port
}

// LoadServices reads a file in /etc/services format: "name port/protocol
// [aliases...]", '#' starting a comment. Protocols other than tcp, udp and
// sctp are skipped; the first name of a port wins, as with getservbyport.
func LoadServices(path string) (*Services, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &Services{names: map[uint32]string{}}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 2 {
			return nil, &FileError{File: path, Line: line, Err: fmt.Errorf("%q has no port (expected \"name port/protocol [aliases]\", e.g. \"http 80/tcp www\")", fields[0])}
		}
		portText, protoText, ok := strings.Cut(fields[1], "/")
		port, err := strconv.ParseUint(portText, 10, 16)
		if !ok || err != nil {
			return nil, &FileError{File: path, Line: line, Err: fmt.Errorf("%q is not a port/protocol (expected e.g. \"80/tcp\")", fields[1])}
		}
		var proto uint32
		switch strings.ToLower(protoText) {
		case "tcp":
			proto = protoTCP
		case "udp":
			proto = protoUDP
		case "sctp":
			proto = protoSCTP
		default:
			continue // ddp and others: not in flow records
		}
		k := proto<<16 | uint32(port)
		if _, dup := s.names[k]; !dup {
			s.names[k] = fields[0]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, errorf(path, err)
	}
	return s, nil
}

// Len returns the number of (protocol, port) pairs named.
func (s *Services) Len() int { return len(s.names) }

// Lookup returns the name of port for IP protocol proto, or "".
func (s *Services) Lookup(proto uint8, port int64) string {
	if port < 0 || port > 65535 {
		return ""
	}
	return s.names[uint32(proto)<<16|uint32(port)]
}
