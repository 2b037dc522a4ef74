package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCLI runs the command line in process and returns its outputs and exit
// code.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestCommands_SortedAndComplete(t *testing.T) {
	var names []string
	for _, c := range commands() {
		require.NotEmpty(t, c.name)
		require.NotEmpty(t, c.summary, c.name)
		require.NotNil(t, c.run, c.name)
		names = append(names, c.name)
	}
	assert.True(t, slices.IsSorted(names), "commands() must be alphabetical: %v", names)
	assert.Len(t, slices.Compact(slices.Clone(names)), len(names), "duplicate command names: %v", names)
	for _, want := range []string{"cases", "demo", "explain", "import"} {
		assert.Contains(t, names, want)
	}
}

func TestRun_Dispatch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no args", args: nil, wantCode: exitUsage, wantStderr: "Usage: mailcase <command>"},
		{name: "help", args: []string{"help"}, wantCode: exitOK, wantStdout: "explain"},
		{name: "--help", args: []string{"--help"}, wantCode: exitOK, wantStdout: "Commands:"},
		{name: "help command", args: []string{"help", "explain"}, wantCode: exitOK, wantStdout: "Usage: mailcase explain [--json]"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: exitUsage, wantStderr: `unknown command "frobnicate"`},
		{name: "bad flag", args: []string{"cases", "--nope"}, wantCode: exitUsage, wantStderr: "flag provided but not defined: -nope"},
		{name: "command -h", args: []string{"import", "-h"}, wantCode: exitOK, wantStderr: "--quiet"},
		{name: "explain without file", args: []string{"explain"}, wantCode: exitUsage, wantStderr: "explain needs exactly one mail file"},
		{name: "demo with argument", args: []string{"demo", "extra"}, wantCode: exitUsage, wantStderr: "demo takes no arguments"},
		{name: "unknown store scheme", args: []string{"cases", "--store", "nosuch://x"}, wantCode: exitFailure, wantStderr: `no store registered for scheme "nosuch"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCLI(t, tc.args...)
			assert.Equal(t, tc.wantCode, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			if tc.wantStdout != "" {
				assert.Contains(t, stdout, tc.wantStdout)
			}
			if tc.wantStderr != "" {
				assert.Contains(t, stderr, tc.wantStderr)
			}
		})
	}
}

func TestParseFlags_Interspersed(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantPos  []string
		wantJSON bool
		wantErr  bool
	}{
		{name: "flag first", args: []string{"--json", "a.eml"}, wantPos: []string{"a.eml"}, wantJSON: true},
		{name: "flag last", args: []string{"a.eml", "--json"}, wantPos: []string{"a.eml"}, wantJSON: true},
		{name: "two positionals", args: []string{"a", "--json", "b"}, wantPos: []string{"a", "b"}, wantJSON: true},
		{name: "no flags", args: []string{"a"}, wantPos: []string{"a"}},
		{name: "none", args: nil, wantPos: nil},
		{name: "unknown flag", args: []string{"a", "--x"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("test", "", io.Discard)
			j := fs.Bool("json", false, "")
			pos, err := parseFlags(fs, tc.args)
			if tc.wantErr {
				require.Error(t, err)
				assert.Equal(t, exitUsage, exitCode(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantPos, pos)
			assert.Equal(t, tc.wantJSON, *j)
		})
	}
}

func TestExitCode(t *testing.T) {
	assert.Equal(t, exitOK, exitCode(nil))
	assert.Equal(t, exitOK, exitCode(flag.ErrHelp))
	assert.Equal(t, exitFailure, exitCode(io.EOF))
	assert.Equal(t, 75, exitCode(withExitCode(75, io.ErrUnexpectedEOF)))
	assert.Equal(t, exitUsage, exitCode(usageError("x %d", 1)))
	assert.ErrorIs(t, withExitCode(75, io.ErrUnexpectedEOF), io.ErrUnexpectedEOF)
}

func TestRun_CanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"demo"}, &out, &errb)
	assert.Equal(t, exitFailure, code)
	assert.True(t, strings.Contains(errb.String(), "context canceled"), "stderr: %s", errb.String())
}
