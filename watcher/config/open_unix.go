//go:build unix

package config

import (
	"os"
	"syscall"
)

// openReadFlags opens a file for reading without waiting for a FIFO's writer.
const openReadFlags = os.O_RDONLY | syscall.O_NONBLOCK
