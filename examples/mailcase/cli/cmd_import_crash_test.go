package cli

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// The crash corpus: importConvs conversations of importDepth mails each,
// interleaved so that every conversation is in flight at once (file k is
// mail k/importConvs of conversation k%importConvs). Each mail carries a
// quoted history and a small attachment, so that a concurrent import has
// real parsing to overlap with its commits.
const (
	importConvs = 80
	importDepth = 20
)

func importCrashMailID(conv, j int) string { return fmt.Sprintf("conv%d-%d@customer.example", conv, j) }

func importCrashMail(conv, j int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Customer %d <c%d@customer.example>\r\nTo: support@example.com\r\n", conv, conv)
	subject := fmt.Sprintf("Conversation %d", conv)
	if j > 0 {
		subject = "Re: " + subject
	}
	fmt.Fprintf(&b, "Subject: %s\r\nMessage-ID: <%s>\r\n", subject, importCrashMailID(conv, j))
	fmt.Fprintf(&b, "Date: Mon, 7 Dec 2026 10:%02d:%02d +0000\r\n", j, conv%60)
	if j > 0 {
		refs := make([]string, j)
		for i := range j {
			refs[i] = "<" + importCrashMailID(conv, i) + ">"
		}
		fmt.Fprintf(&b, "In-Reply-To: %s\r\nReferences: %s\r\n", refs[j-1], strings.Join(refs, " "))
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")
	fmt.Fprintf(&b, "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nMessage %d of conversation %d.\r\n\r\n", j, conv)
	if j > 0 {
		b.WriteString("On Monday, support wrote:\r\n")
		for range 40 {
			b.WriteString("> an earlier line of this conversation, quoted back\r\n")
		}
	}
	att := bytes.Repeat([]byte{byte(conv), byte(j), 0xff, 0x00}, 1024)
	fmt.Fprintf(&b, "--b\r\nContent-Type: application/octet-stream; name=\"log-%d-%d.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", conv, j)
	enc := base64.StdEncoding.EncodeToString(att)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--b--\r\n")
	return b.Bytes()
}

// importCrashCheck opens the SQLite store db (no worker runs) and returns,
// per Message-ID of the corpus, whether it is filed, and the number of mails
// filed per case subject.
type importCrashState struct {
	filed    map[string]bool
	mails    map[string]int // per conversation subject
	cases    map[string]int // cases per conversation subject
	received int
}

func importCrashRead(t *testing.T, db string) importCrashState {
	t.Helper()
	store, err := openStore(t.Context(), "sqlite://"+db)
	require.NoError(t, err)
	defer store.Close()
	cases, err := store.ListCases(t.Context(), &mailcase.ListOptions{Limit: 100000})
	require.NoError(t, err)
	st := importCrashState{filed: map[string]bool{}, mails: map[string]int{}, cases: map[string]int{}}
	for _, c := range cases {
		subj := strings.TrimPrefix(c.Subject, "Re: ")
		st.cases[subj]++
		ins, err := store.ListInteractions(t.Context(), c.ID)
		require.NoError(t, err)
		for _, in := range ins {
			if in.Email == nil || in.Email.Direction == driver.Outbound {
				continue
			}
			st.received++
			st.mails[subj]++
			st.filed[strings.Trim(in.Email.MessageID, "<>")] = true
		}
	}
	return st
}

// TestImportCrashSafety is the durability proof of the concurrent import:
// `mailcase import --concurrency 8` of a directory (filed files moved to
// done/) and of an mbox (progress in its state file) is killed with SIGKILL
// at random points and started again. After every kill, each file in done/
// and each mail the mbox state marks done is filed in the store (nothing is
// acknowledged before its commit); at the end every mail is filed exactly
// once and every conversation is one case (replies are never filed before
// the mail they answer, across the kills too).
func TestImportCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts an import a dozen times; skipped with -short")
	}
	bin := buildBinary(t)
	for _, format := range []string{"dir", "mbox"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "cases.db")
			src := filepath.Join(dir, "in")
			require.NoError(t, os.Mkdir(src, 0o750))
			total := importConvs * importDepth
			// offsets maps an mbox mail's From_ line offset to its Message-ID.
			offsets := map[int64]string{}
			if format == "dir" {
				for k := range total {
					conv, j := k%importConvs, k/importConvs
					writeFile(t, src, fmt.Sprintf("%05d.eml", k), string(importCrashMail(conv, j)))
				}
			} else {
				var mb bytes.Buffer
				for k := range total {
					conv, j := k%importConvs, k/importConvs
					offsets[int64(mb.Len())] = importCrashMailID(conv, j)
					mb.WriteString("From c@customer.example Mon Dec  7 10:00:00 2026\n")
					mb.Write(bytes.ReplaceAll(importCrashMail(conv, j), []byte("\r\n"), []byte("\n")))
					mb.WriteString("\n")
				}
				src = filepath.Join(dir, "in.mbox")
				require.NoError(t, os.WriteFile(src, mb.Bytes(), 0o600))
			}
			args := []string{"import", "--store", "sqlite://" + db, "--quiet", "--concurrency", "8", src}
			if format == "dir" {
				args = append(args[:len(args)-1], "--on-done", "move", src)
			}

			// acknowledged lists the Message-IDs the source has settled:
			// the files in done/, or the mbox state's done lines.
			acknowledged := func() []string {
				var ids []string
				if format == "dir" {
					files, err := filepath.Glob(filepath.Join(src, "done", "*.eml"))
					require.NoError(t, err)
					for _, f := range files {
						k, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(f), ".eml"))
						require.NoError(t, err)
						ids = append(ids, importCrashMailID(k%importConvs, k/importConvs))
					}
					return ids
				}
				data, err := os.ReadFile(src + ".emailcrm-state")
				if os.IsNotExist(err) {
					return nil
				}
				require.NoError(t, err)
				for _, line := range strings.Split(string(data), "\n") {
					f := strings.Fields(line)
					if len(f) < 3 || f[0] != "done" {
						continue // a torn last line is ignored by the source too
					}
					off, err := strconv.ParseInt(f[1], 10, 64)
					require.NoError(t, err)
					id, ok := offsets[off]
					require.True(t, ok, "state names offset %d, which starts no mail", off)
					ids = append(ids, id)
				}
				return ids
			}

			rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
			const kills = 6
			killed, midway := 0, 0
			// The delay before a kill grows while kills find nothing
			// newly acknowledged (a loaded machine starts slowly).
			delay, last := 60*time.Millisecond, 0
			for midway < kills && killed < 4*kills {
				cmd := exec.CommandContext(t.Context(), bin, args...)
				cmd.Env = append(os.Environ(), "MAILCASE_LOG_LEVEL=error")
				require.NoError(t, cmd.Start())
				time.Sleep(delay + time.Duration(rng.IntN(300))*time.Millisecond)
				require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
				err := cmd.Wait()
				killed++
				st := importCrashRead(t, db)
				acked := acknowledged()
				for _, id := range acked {
					require.True(t, st.filed[id], "after kill %d: %s was acknowledged by the source but is not filed", killed, id)
				}
				if len(acked) == total && err == nil {
					break // it finished before the signal
				}
				if len(acked) > 0 && len(acked) < total {
					midway++
				}
				if len(acked) == last {
					delay = min(2*delay, 5*time.Second)
				}
				last = len(acked)
				t.Logf("kill %d: %d of %d mails acknowledged, %d filed", killed, len(acked), total, st.received)
			}
			assert.GreaterOrEqual(t, midway, 2, "kills in the middle of the import")

			stdout, stderr, code := runBinary(t, bin, args...)
			require.Zero(t, code, "last import: %s\n%s", stdout, stderr)
			st := importCrashRead(t, db)
			assert.Len(t, acknowledged(), total, "every mail acknowledged after the last import")
			assert.Equal(t, total, st.received, "every mail filed exactly once")
			assert.Len(t, st.cases, importConvs)
			for conv := range importConvs {
				subj := fmt.Sprintf("Conversation %d", conv)
				assert.Equal(t, 1, st.cases[subj], "one case for %s", subj)
				assert.Equal(t, importDepth, st.mails[subj], "mails filed on %s", subj)
			}
			if format == "dir" {
				left, err := filepath.Glob(filepath.Join(src, "*.eml"))
				require.NoError(t, err)
				assert.Empty(t, left, "no mail left unmoved")
			}
		})
	}
}
