// Package cli holds the commands of the mailcase example command line
// (explain, import, cases, run, pipe, lmtp, demo, quarantine, reparse,
// config, route, train, sla), so that a program with its own store driver gets
// all of them against --store theircrm:// with a five-line main:
//
//	package main
//
//	import (
//		"context"
//		"os"
//
//		"github.com/emailcrm/emailcrm/examples/mailcase/cli"
//		_ "example.com/theircrm" // registers theircrm:// in mailcase.DefaultURLMux
//	)
//
//	func main() { os.Exit(cli.Main(context.Background(), os.Args[1:])) }
//
// [Main] runs the command line on the process's streams and stops
// gracefully on SIGINT and SIGTERM; [Run] takes the streams in [Options]
// (tests capture the output with it). The commands open stores through
// mailcase.DefaultURLMux, so every driver the program links in is
// available; mem:// (package memstore) is always linked, since explain and
// route use it. The commands, flags and the configuration file are
// documented in the mailcase command (examples/mailcase).
package cli
