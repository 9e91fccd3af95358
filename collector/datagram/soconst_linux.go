//go:build linux && !mips && !mipsle && !mips64 && !mips64le

package datagram

// The syscall package predates SO_REUSEPORT; this is its asm-generic value.
const soReusePort = 0xf
