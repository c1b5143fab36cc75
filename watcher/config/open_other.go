//go:build !unix

package config

import "os"

// openReadFlags opens a file for reading.
const openReadFlags = os.O_RDONLY
