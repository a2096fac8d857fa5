package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

// MaxSafeInteger is the largest magnitude a number in a report may have:
// 2^53 − 1, the largest integer every JSON implementation (an IEEE double)
// reads exactly, as RFC 8785 (JCS) requires.
const MaxSafeInteger = 1<<53 - 1

// Canonical returns the canonical encoding (SPEC.md §18.2) of the JSON
// value in data: RFC 8785 (JCS) restricted to integers — object members
// sorted by key (byte order, which for the ASCII keys of a report is
// JCS's UTF-16 order), no whitespace, strings escaped only where JSON
// must (", \, and controls as \b \f \n \r \t or \u00xx), integers in
// shortest decimal form. A number with a fraction or exponent, or beyond
// ±MaxSafeInteger, is refused, as are duplicate keys and invalid UTF-8.
// If drop is not empty, the top-level member of that name is left out.
func Canonical(data []byte, drop string) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var buf bytes.Buffer
	if err := canonValue(dec, &buf, drop, 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON value", ErrMalformed)
	}
	return buf.Bytes(), nil
}

// maxDepth bounds nesting, so a hostile document cannot exhaust the stack.
const maxDepth = 32

func canonValue(dec *json.Decoder, buf *bytes.Buffer, drop string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return canonObject(dec, buf, drop, depth)
		case '[':
			buf.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					buf.WriteByte(',')
				}
				if err := canonValue(dec, buf, "", depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("%w: %v", ErrMalformed, err)
			}
			buf.WriteByte(']')
			return nil
		}
		return fmt.Errorf("%w: unexpected %v", ErrMalformed, t)
	case string:
		writeString(buf, t)
	case json.Number:
		n, err := strconv.ParseInt(string(t), 10, 64)
		if err != nil || n > MaxSafeInteger || n < -MaxSafeInteger {
			return fmt.Errorf("%w: number %s is not an integer within ±(2^53−1)", ErrMalformed, t)
		}
		buf.WriteString(strconv.FormatInt(n, 10))
	case bool:
		buf.WriteString(strconv.FormatBool(t))
	case nil:
		buf.WriteString("null")
	}
	return nil
}

func canonObject(dec *json.Decoder, buf *bytes.Buffer, drop string, depth int) error {
	type member struct {
		key string
		val []byte
	}
	var ms []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("%w: object key %v", ErrMalformed, tok)
		}
		if seen[key] {
			return fmt.Errorf("%w: duplicate key %q", ErrMalformed, key)
		}
		seen[key] = true
		var v bytes.Buffer
		if err := canonValue(dec, &v, "", depth+1); err != nil {
			return err
		}
		if key != drop || drop == "" {
			ms = append(ms, member{key, v.Bytes()})
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	slices.SortFunc(ms, func(a, b member) int { return compareUTF16(a.key, b.key) })
	buf.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			buf.WriteByte(',')
		}
		writeString(buf, m.key)
		buf.WriteByte(':')
		buf.Write(m.val)
	}
	buf.WriteByte('}')
	return nil
}

// compareUTF16 orders keys by their UTF-16 code units, as JCS does.
func compareUTF16(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	for i := 0; i < len(ra) && i < len(rb); i++ {
		if ra[i] != rb[i] {
			ua, ub := utf16Key(ra[i]), utf16Key(rb[i])
			if ua < ub {
				return -1
			}
			return 1
		}
	}
	return len(ra) - len(rb)
}

// utf16Key maps a rune to a value ordered as its first UTF-16 code unit
// (then the rune, to break ties among supplementary characters).
func utf16Key(r rune) int64 {
	if r >= 0x10000 {
		hi := 0xd800 + (r-0x10000)>>10
		return int64(hi)<<21 | int64(r)
	}
	return int64(r) << 21
}

func writeString(buf *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	buf.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			buf.WriteString(`\"`)
		case r == '\\':
			buf.WriteString(`\\`)
		case r == '\b':
			buf.WriteString(`\b`)
		case r == '\f':
			buf.WriteString(`\f`)
		case r == '\n':
			buf.WriteString(`\n`)
		case r == '\r':
			buf.WriteString(`\r`)
		case r == '\t':
			buf.WriteString(`\t`)
		case r < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hexDigits[r>>4])
			buf.WriteByte(hexDigits[r&0xf])
		default:
			buf.WriteRune(r)
		}
	}
	buf.WriteByte('"')
}
