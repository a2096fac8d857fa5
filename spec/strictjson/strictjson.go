// Package strictjson decodes JSON documents that arrive from outside —
// job specs, API request bodies — by rules stricter than encoding/json's,
// so that one document has exactly one reading:
//
//   - object keys match struct fields exactly (encoding/json folds case);
//   - a key may appear once per object (encoding/json keeps the last);
//   - every field is required unless its json tag says omitempty, and a
//     field that is present must not be null (encoding/json turns both an
//     absent field and null into the zero value);
//   - unknown keys are refused;
//   - the document is one JSON value, with only whitespace around it;
//   - the bytes are valid UTF-8 (encoding/json substitutes U+FFFD).
//
// Strings are read as RFC 8259 says, escapes included (`\u0041` is "A");
// a \u escape of a lone surrogate is refused, since it names no character.
// Numbers must fit the Go type they decode into exactly (encoding/json's
// rule: 1.0 does not decode into an integer, 2^63 does not fit an int64).
//
// spec/SPEC.md §3 states these rules for job specs.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrInvalid marks a document these rules refuse.
var ErrInvalid = errors.New("invalid JSON document")

// Decode checks data against the rules above for v's type, then decodes it
// into v, which must be a non-nil pointer. Nothing is written to v unless
// the whole document is accepted.
func Decode(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictjson: Decode needs a non-nil pointer, got %T", v)
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalid)
	}
	if err := checkEscapes(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	c := checker{dec: dec}
	if err := c.value(rv.Type().Elem(), "$"); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: data after the JSON value", ErrInvalid)
	}
	// The document is now known to be a single, well-formed value whose
	// keys match exactly and appear once: encoding/json reads it the same.
	tmp := reflect.New(rv.Type().Elem())
	d2 := json.NewDecoder(bytes.NewReader(data))
	d2.DisallowUnknownFields()
	if err := d2.Decode(tmp.Interface()); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	rv.Elem().Set(tmp.Elem())
	return nil
}

type checker struct {
	dec   *json.Decoder
	depth int
}

// maxDepth bounds nesting, so a hostile document cannot exhaust the stack.
const maxDepth = 64

// field is one JSON key of a struct.
type field struct {
	typ      reflect.Type
	optional bool
}

func fieldsOf(t reflect.Type) map[string]field {
	out := map[string]field{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out[name] = field{typ: f.Type, optional: strings.Contains(","+opts+",", ",omitempty,")}
	}
	return out
}

// value reads one JSON value that must decode into t.
func (c *checker) value(t reflect.Type, path string) error {
	tok, err := c.dec.Token()
	if err != nil {
		return fmt.Errorf("%w: at %s: %v", ErrInvalid, path, err)
	}
	return c.tokenValue(tok, t, path)
}

func (c *checker) tokenValue(tok json.Token, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if tok == nil {
		return fmt.Errorf("%w: %s is null: give a value or leave an optional field out", ErrInvalid, path)
	}
	switch d := tok.(type) {
	case json.Delim:
		switch d {
		case '{':
			return c.object(t, path)
		case '[':
			return c.array(t, path)
		}
		return fmt.Errorf("%w: at %s: unexpected %q", ErrInvalid, path, d)
	case json.Number:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if _, err := strconv.ParseInt(string(d), 10, t.Bits()); err != nil {
				return fmt.Errorf("%w: %s = %s is not an integer of %d bits", ErrInvalid, path, d, t.Bits())
			}
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			if _, err := strconv.ParseUint(string(d), 10, t.Bits()); err != nil {
				return fmt.Errorf("%w: %s = %s is not an unsigned integer of %d bits", ErrInvalid, path, d, t.Bits())
			}
		case reflect.Float32, reflect.Float64, reflect.Interface:
		default:
			return fmt.Errorf("%w: %s is a number, want %s", ErrInvalid, path, kindName(t))
		}
	case string:
		if t.Kind() != reflect.String && t.Kind() != reflect.Interface && !isTextUnmarshaler(t) {
			return fmt.Errorf("%w: %s is a string, want %s", ErrInvalid, path, kindName(t))
		}
	case bool:
		if t.Kind() != reflect.Bool && t.Kind() != reflect.Interface {
			return fmt.Errorf("%w: %s is a boolean, want %s", ErrInvalid, path, kindName(t))
		}
	}
	return nil
}

func isTextUnmarshaler(t reflect.Type) bool {
	type textUnmarshaler interface{ UnmarshalText([]byte) error }
	return reflect.PointerTo(t).Implements(reflect.TypeFor[textUnmarshaler]())
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	default:
		return "a number"
	}
}

func (c *checker) enter(path string) error {
	c.depth++
	if c.depth > maxDepth {
		return fmt.Errorf("%w: at %s: nested deeper than %d", ErrInvalid, path, maxDepth)
	}
	return nil
}

func (c *checker) object(t reflect.Type, path string) error {
	if err := c.enter(path); err != nil {
		return err
	}
	defer func() { c.depth-- }()
	var fields map[string]field
	switch t.Kind() {
	case reflect.Struct:
		fields = fieldsOf(t)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("%w: %s: maps need string keys", ErrInvalid, path)
		}
	case reflect.Interface:
	default:
		return fmt.Errorf("%w: %s is an object, want %s", ErrInvalid, path, kindName(t))
	}
	seen := map[string]bool{}
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return fmt.Errorf("%w: at %s: %v", ErrInvalid, path, err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("%w: %s has the key %q twice", ErrInvalid, path, key)
		}
		seen[key] = true
		sub := path + "." + key
		var vt reflect.Type
		switch t.Kind() {
		case reflect.Struct:
			f, ok := fields[key]
			if !ok {
				return fmt.Errorf("%w: %s has no field %q (keys are case-sensitive)", ErrInvalid, path, key)
			}
			vt = f.typ
		case reflect.Map:
			vt = t.Elem()
		default:
			vt = t
		}
		if err := c.value(vt, sub); err != nil {
			return err
		}
	}
	if _, err := c.dec.Token(); err != nil { // '}'
		return fmt.Errorf("%w: at %s: %v", ErrInvalid, path, err)
	}
	for name, f := range fields {
		if !f.optional && !seen[name] {
			return fmt.Errorf("%w: %s lacks the required field %q", ErrInvalid, path, name)
		}
	}
	return nil
}

func (c *checker) array(t reflect.Type, path string) error {
	if err := c.enter(path); err != nil {
		return err
	}
	defer func() { c.depth-- }()
	var et reflect.Type
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		et = t.Elem()
	case reflect.Interface:
		et = t
	default:
		return fmt.Errorf("%w: %s is an array, want %s", ErrInvalid, path, kindName(t))
	}
	n := 0
	for c.dec.More() {
		if t.Kind() == reflect.Array && n >= t.Len() {
			return fmt.Errorf("%w: %s has more than %d elements", ErrInvalid, path, t.Len())
		}
		if err := c.value(et, fmt.Sprintf("%s[%d]", path, n)); err != nil {
			return err
		}
		n++
	}
	if _, err := c.dec.Token(); err != nil { // ']'
		return fmt.Errorf("%w: at %s: %v", ErrInvalid, path, err)
	}
	return nil
}

// checkEscapes refuses a \u escape of a lone UTF-16 surrogate anywhere in
// a string of data, which encoding/json would quietly turn into U+FFFD.
// It runs before the structural check; malformed escapes are left to the
// JSON parser.
func checkEscapes(data []byte) error {
	in := false
	for i := 0; i < len(data); i++ {
		b := data[i]
		if !in {
			if b == '"' {
				in = true
			}
			continue
		}
		switch b {
		case '"':
			in = false
		case '\\':
			if i+1 < len(data) && data[i+1] == 'u' {
				r, ok := hex4(data, i+2)
				if ok && utf16.IsSurrogate(r) {
					lo, ok2 := rune(0), false
					if r < 0xdc00 && i+7 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
						lo, ok2 = hex4(data, i+8)
					}
					if !ok2 || utf16.DecodeRune(r, lo) == utf8.RuneError {
						return fmt.Errorf("%w: \\u%04x at byte %d is half of a UTF-16 surrogate pair", ErrInvalid, r, i)
					}
					i += 6 // the pair's low half is skipped with the escape below
				}
				i += 5
				continue
			}
			i++ // skip the escaped character
		}
	}
	return nil
}

func hex4(data []byte, at int) (rune, bool) {
	if at+4 > len(data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(data[at:at+4]), 16, 32)
	return rune(v), err == nil
}
