package trace

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// canonicalTrace and canonicalZK are the text forms Write and WriteZK give
// for the sample traces: the one form each reader accepts.
func canonicalTrace(t testing.TB) string {
	t.Helper()
	var buf bytes.Buffer
	tr := &Trace{}
	tr.Job[0], tr.Job[31] = 0xab, 0x0c
	for _, step := range []int64{0, 9, 10, 11} {
		e := Entry{Step: step}
		e.Digest[0], e.Digest[31] = byte(step), 0xef
		tr.Entries = append(tr.Entries, e)
	}
	if err := tr.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func canonicalZK(t testing.TB) string {
	t.Helper()
	var buf bytes.Buffer
	if err := zkCanonicalSample().Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func zkCanonicalSample() *ZKTrace {
	z := &ZKTrace{}
	z.Job[0], z.Job[31] = 0xab, 0x0c
	for i := range 12 {
		e := ZKEntry{Step: int64(i)}
		e.Root[0], e.Root[31] = byte(i), 0xef
		z.Entries = append(z.Entries, e)
	}
	return z
}

// nonCanonical lists edits of a canonical text (old → new, first
// occurrence; an empty old appends; "$x" replaces the suffix x) that keep
// its meaning but not its form, or break it: each must be refused.
func nonCanonical(header string) []struct{ name, old, new string } {
	return []struct{ name, old, new string }{
		{"upper-case job", header + " ab", header + " AB"},
		{"upper-case digest", "ef\n", "EF\n"},
		{"leading zero", "\n10 ", "\n010 "},
		{"zero as 00", "\n0 ", "\n00 "},
		{"plus sign", "\n10 ", "\n+10 "},
		{"minus zero", "\n0 ", "\n-0 "},
		{"negative step", "\n10 ", "\n-10 "},
		{"two spaces", "\n10 ", "\n10  "},
		{"tab", "\n10 ", "\n10\t"},
		{"leading space", "\n10 ", "\n 10 "},
		{"trailing space", "ef\n", "ef \n"},
		{"space after job", header + " ", header + "  "},
		{"CRLF", "ef\n", "ef\r\n"},
		{"CRLF after job", "\n", "\r\n"},
		{"no final newline", "$\n", ""},
		{"CRLF at the end", "$\n", "\r\n"},
		{"blank line at end", "", "\n"},
		{"blank line inside", "ef\n", "ef\n\n"},
		{"byte-order mark", header, "\ufeff" + header},
		{"short digest", "ef\n", "e\n"},
		{"long digest", "ef\n", "ef0\n"},
		{"step overflows int64", "\n10 ", "\n9223372036854775808 "},
		{"repeated step", "\n10 ", "\n9 "},
		{"upper-case keyword", header + " ", strings.ToUpper(header) + " "},
		{"trailing garbage", "", "x"},
	}
}

// TestReadRefusesNonCanonical: a trace file has exactly one text form,
// the one Write gives, so that a trace is never ambiguous about what was
// committed; every other spelling is refused.
func TestReadRefusesNonCanonical(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kind, header, text string
		read               func(string) error
	}{
		{"trace", "job", canonicalTrace(t), func(s string) error { _, err := Read(strings.NewReader(s)); return err }},
		{"zk trace", "zkjob", canonicalZK(t), func(s string) error { _, err := ReadZK(strings.NewReader(s)); return err }},
	} {
		if err := c.read(c.text); err != nil {
			t.Fatalf("%s: the canonical text is refused: %v", c.kind, err)
		}
		for i, in := range variants(t, c.header, c.text) {
			if err := c.read(in); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s, %s: %v, want ErrMalformed", c.kind, nonCanonical(c.header)[i].name, err)
			}
		}
	}
}

// variants applies every edit of nonCanonical to text.
func variants(t testing.TB, header, text string) []string {
	t.Helper()
	var out []string
	for _, e := range nonCanonical(header) {
		in := text + e.new
		if suffix, ok := strings.CutPrefix(e.old, "$"); ok {
			in = strings.TrimSuffix(text, suffix) + e.new
		} else if e.old != "" {
			if !strings.Contains(text, e.old) {
				t.Fatalf("%s: %q not in the text", e.name, e.old)
			}
			in = strings.Replace(text, e.old, e.new, 1)
		}
		out = append(out, in)
	}
	return out
}
