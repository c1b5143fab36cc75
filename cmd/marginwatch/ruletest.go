package main

import (
	"flag"
	"fmt"
	"io"
	"regexp"

	"github.com/marginwatch/marginwatch/watcher/rules/ruletest"
)

// cmdTest runs rule unit tests (README "Testing rules"): the work is
// ruletest's; this is flags and exit codes.
func cmdTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("marginwatch test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runPat := fs.String("run", "", "run only the tests whose name matches this regular expression")
	verbose := fs.Bool("v", false, "print every notice of every evaluation, and each test that passed")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: marginwatch test [-run REGEX] [-v] FILE...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "marginwatch test: name at least one test file")
		fs.Usage()
		return exitUsage
	}
	opt := ruletest.Options{Verbose: *verbose}
	if *runPat != "" {
		re, err := regexp.Compile(*runPat)
		if err != nil {
			fmt.Fprintf(stderr, "marginwatch test: -run %q: %v\n", *runPat, err)
			return exitUsage
		}
		opt.Run = re
	}
	if !ruletest.Run(stdout, fs.Args(), opt).OK() {
		return exitFailure
	}
	return exitOK
}
