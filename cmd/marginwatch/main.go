// Command marginwatch watches leveraged futures accounts and warns before
// liquidation. See README.md.
package main

import (
	"os"
	_ "time/tzdata" // digests' CRON_TZ= must work on hosts without a zoneinfo database
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
