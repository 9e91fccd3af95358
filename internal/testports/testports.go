// Package testports hands out free TCP ports of 127.0.0.1 to the tests of
// one process, never the same port twice: a port found free, released and
// given to a server that binds it seconds later (a JVM starting) must not go
// to another server meanwhile, as the kernel's next free port may.
package testports

import (
	"errors"
	"net"
	"strconv"
	"sync"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Free returns n free ports, none handed out before by this package.
func Free(n int) ([]int, error) {
	mu.Lock()
	defer mu.Unlock()
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, errors.New("testports: no free port")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l) // held until all are chosen: no port twice
		if p := l.Addr().(*net.TCPAddr).Port; !given[p] {
			ports = append(ports, p)
		}
	}
	for _, p := range ports {
		given[p] = true
	}
	return ports, nil
}

// Consecutive returns the first of n consecutive free ports, none handed out
// before by this package.
func Consecutive(n int) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		base := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		ok := base+n-1 <= 65535
		for p := base; ok && p < base+n; p++ {
			if given[p] {
				ok = false
				break
			}
			if p == base {
				continue
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if ok {
			for p := base; p < base+n; p++ {
				given[p] = true
			}
			return base, nil
		}
	}
	return 0, errors.New("testports: no free consecutive ports")
}
