package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildBinary builds the mailcase command (examples/mailcase, the main
// over this package) into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "mailcase")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "..")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build:\n%s", out)
	return bin
}

// runBinary runs bin with args and returns stdout, stderr and the exit code.
func runBinary(t *testing.T, bin string, args ...string) (stdout, stderr []byte, code int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = append(os.Environ(), "MAILCASE_LOG_LEVEL=error")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		require.NoError(t, err)
	}
	return out.Bytes(), errb.Bytes(), code
}

func TestBinary(t *testing.T) {
	bin := buildBinary(t)

	t.Run("demo", func(t *testing.T) {
		stdout, stderr, code := runBinary(t, bin, "demo")
		require.Equal(t, 0, code, "stderr:\n%s", stderr)
		counts := summaryCounts(t, string(stdout))
		assert.Equal(t, 10, counts["fetched"])
		assert.Equal(t, 5, counts["created"])
		assert.Equal(t, 2, counts["appended"])
		assert.Equal(t, 0, counts["errors"])
	})

	for _, file := range []string{"demo/01-invoice-contact.eml", "demo/06-bounce.eml", "demo/09-html-attachment.eml", "testdata/inline-image.eml"} {
		t.Run("explain --json "+filepath.Base(file), func(t *testing.T) {
			stdout, stderr, code := runBinary(t, bin, "explain", "--json", file)
			require.Equal(t, 0, code, "stderr:\n%s", stderr)
			checkExplainJSON(t, filepath.Base(file), decodeExplain(t, stdout))
		})
	}

	t.Run("explain --json unparseable", func(t *testing.T) {
		stdout, stderr, code := runBinary(t, bin, "explain", "--json", "testdata/unparseable.eml")
		assert.Equal(t, 1, code)
		assert.Contains(t, string(stderr), "cannot be parsed")
		obj := decodeExplain(t, stdout)
		assert.Contains(t, obj["error"], "cannot be parsed")
	})

	t.Run("usage", func(t *testing.T) {
		_, stderr, code := runBinary(t, bin)
		assert.Equal(t, 2, code)
		assert.Contains(t, string(stderr), "Commands:")
	})
}
