package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type inner struct {
	N int64 `json:"n"`
}

type doc struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	On    bool     `json:"on"`
	In    inner    `json:"in"`
	List  []inner  `json:"list"`
	Opt   *inner   `json:"opt,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	U     uint8    `json:"u"`
}

const good = `{"name":"a","count":1,"on":true,"in":{"n":2},"list":[{"n":3}],"u":255}`

func TestAccepts(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		good,
		" \n\t" + good + "\r\n ",
		`{"name":"\u0041","count":-0,"on":false,"in":{"n":-9223372036854775808},"list":[],"u":0,"opt":{"n":1},"tags":["x"]}`,
		`{"name":"😀 \ud83d\ude00","count":1,"on":true,"in":{"n":2},"list":[{"n":3}],"u":255}`,
	} {
		var d doc
		if err := Decode([]byte(in), &d); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
	var d doc
	if err := Decode([]byte(`{"name":"\u0041","count":1,"on":true,"in":{"n":2},"list":[{"n":3}],"u":255}`), &d); err != nil || d.Name != "A" {
		t.Fatalf("escape: %q %v", d.Name, err)
	}
}

func TestRefuses(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"case-folded key":      strings.Replace(good, `"name"`, `"Name"`, 1),
		"duplicate key":        strings.Replace(good, `"on":true`, `"on":true,"on":false`, 1),
		"duplicate nested key": strings.Replace(good, `{"n":2}`, `{"n":2,"n":3}`, 1),
		"absent required":      strings.Replace(good, `"count":1,`, ``, 1),
		"absent nested":        strings.Replace(good, `{"n":2}`, `{}`, 1),
		"null required":        strings.Replace(good, `"count":1`, `"count":null`, 1),
		"null optional":        strings.Replace(good, `"u":255`, `"u":255,"opt":null`, 1),
		"null element":         strings.Replace(good, `[{"n":3}]`, `[null]`, 1),
		"unknown key":          strings.Replace(good, `"u":255`, `"u":255,"x":1`, 1),
		"trailing value":       good + ` {}`,
		"trailing garbage":     good + `x`,
		"two documents":        good + good,
		"float into int":       strings.Replace(good, `"count":1`, `"count":1.0`, 1),
		"exponent into int":    strings.Replace(good, `"count":1`, `"count":1e2`, 1),
		"overflow int64":       strings.Replace(good, `{"n":2}`, `{"n":9223372036854775808}`, 1),
		"overflow uint8":       strings.Replace(good, `"u":255`, `"u":256`, 1),
		"negative uint":        strings.Replace(good, `"u":255`, `"u":-1`, 1),
		"string for int":       strings.Replace(good, `"count":1`, `"count":"1"`, 1),
		"number for string":    strings.Replace(good, `"name":"a"`, `"name":1`, 1),
		"array for object":     strings.Replace(good, `{"n":2}`, `[]`, 1),
		"invalid utf-8":        strings.Replace(good, `"a"`, "\"\xff\"", 1),
		"lone high surrogate":  strings.Replace(good, `"a"`, `"\ud83d"`, 1),
		"lone low surrogate":   strings.Replace(good, `"a"`, `"\ude00x"`, 1),
		"reversed pair":        strings.Replace(good, `"a"`, `"\ude00\ud83d"`, 1),
		"empty":                ``,
		"not an object":        `[]`,
		"truncated":            good[:len(good)-1],
		"deep":                 strings.Replace(good, `"list":[{"n":3}]`, `"list":[{"n":3}],"tags":`+strings.Repeat("[", 100)+strings.Repeat("]", 100), 1),
	} {
		var d doc
		err := Decode([]byte(in), &d)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
		if d.Name != "" || d.Count != 0 {
			t.Errorf("%s: refused document left a partial value %+v", name, d)
		}
	}
}

// FuzzDecode: whatever the bytes, Decode never panics, and what it accepts
// encoding/json accepts and reads the same.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"name":"\ud83d\ude00","count":1,"on":true,"in":{"n":2},"list":[{"n":3}],"u":255}`))
	f.Add([]byte(`{"name":"a","name":"b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		if err := Decode(data, &d); err != nil {
			return
		}
		var std doc
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("accepted what encoding/json refuses: %v", err)
		}
		a, _ := json.Marshal(d)
		b, _ := json.Marshal(std)
		if string(a) != string(b) {
			t.Fatalf("read differently: %s vs %s", a, b)
		}
	})
}
