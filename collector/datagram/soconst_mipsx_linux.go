//go:build linux && (mips || mipsle || mips64 || mips64le)

package datagram

const soReusePort = 0x200
