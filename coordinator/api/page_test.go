package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestPageItemsWalksTheList: following next_cursor from the first page
// visits every item once, in order, for every limit; the last page has no
// cursor.
func TestPageItemsWalksTheList(t *testing.T) {
	t.Parallel()
	var items []uint64
	for i := uint64(1); i <= 23; i++ {
		items = append(items, i*7)
	}
	for _, limit := range []int{1, 2, 5, 22, 23, 24, 100} {
		var got []uint64
		q := url.Values{"limit": {itoa(limit)}}
		for pages := 0; ; pages++ {
			if pages > len(items) {
				t.Fatalf("limit %d: the cursors loop", limit)
			}
			p, err := ParsePage(q)
			if err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			page, next := PageItems(items, SeqKey, p)
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			got = append(got, page...)
			if next == "" {
				break
			}
			q.Set("cursor", next)
		}
		if !slices.Equal(got, items) {
			t.Errorf("limit %d: walked %v", limit, got)
		}
	}
	// An empty list is one empty page.
	if page, next := PageItems([]uint64{}, SeqKey, Page{Limit: 3}); len(page) != 0 || next != "" {
		t.Errorf("empty list: %v %q", page, next)
	}
}

// TestParsePageRefusesBadParameters: a limit outside 1..MaxPageLimit or a
// cursor this server did not issue is a 400 saying what to do; none is
// the default.
func TestParsePageRefusesBadParameters(t *testing.T) {
	t.Parallel()
	if p, err := ParsePage(url.Values{}); err != nil || p.Limit != DefaultPageLimit || p.After != "" {
		t.Fatalf("no parameters: %+v %v", p, err)
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=1001", "limit=x", "limit=", "limit=1.5",
		"cursor=", "cursor=***", "cursor=abc", "cursor=" + Cursor("")} {
		v, _ := url.ParseQuery(q)
		if _, err := ParsePage(v); !errors.Is(err, errBadRequest) {
			t.Errorf("%s: %v, want a bad request", q, err)
		}
	}
	v, _ := url.ParseQuery("limit=1000&cursor=" + Cursor("k"))
	if p, err := ParsePage(v); err != nil || p.Limit != 1000 || p.After != "k" {
		t.Errorf("good parameters: %+v %v", p, err)
	}
}

// FuzzParsePage: any query either parses to a limit in range or is a bad
// request; a cursor that parses round-trips.
func FuzzParsePage(f *testing.F) {
	for _, s := range []string{"", "limit=5", "cursor=" + Cursor("00000000000000000007"), "limit=0&cursor=Yw", "cursor=%00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := ParsePage(q)
		if err != nil {
			if !errors.Is(err, errBadRequest) {
				t.Fatalf("%q: %v", raw, err)
			}
			return
		}
		if p.Limit < 1 || p.Limit > MaxPageLimit {
			t.Fatalf("%q: limit %d", raw, p.Limit)
		}
		if p.After != "" {
			if after, ok := decodeCursor(Cursor(p.After)); !ok || after != p.After {
				t.Fatalf("%q: cursor does not round-trip", raw)
			}
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestStatementPages: a statement's lines come in pages of limit, in
// journal order, each page with the whole statement's balances and a
// next_cursor until the last; walking them gives the lines of one
// unpaged request. A bad limit is a 400.
func TestStatementPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 5 {
		body := fmt.Sprintf(`{"bank_ref":"w%d","account":"client:acme","amount_micro_usd":%d}`, i, i+1)
		if c, b := e.do("POST", "/v1/deposits", e.operator, fmt.Sprint("d", i), body); c != 201 {
			t.Fatalf("deposit: %d %s", c, b)
		}
	}
	type page struct {
		Closing int64 `json:"closing_balance_micro_usd"`
		Lines   []struct {
			Seq uint64 `json:"seq"`
		} `json:"lines"`
		NextCursor *string `json:"next_cursor"`
	}
	get := func(query string) page {
		c, b := e.do("GET", "/v1/accounts/client:acme/statement"+query, e.client, "", "")
		var p page
		if err := json.Unmarshal(b, &p); c != 200 || err != nil {
			t.Fatalf("statement%s: %d %s", query, c, b)
		}
		return p
	}
	all := get("?limit=1000")
	if len(all.Lines) != 5 || all.NextCursor != nil || all.Closing != 15 {
		t.Fatalf("unpaged: %+v", all)
	}
	var walked []uint64
	query := "?limit=2"
	for pages := 0; ; pages++ {
		p := get(query)
		if p.Closing != 15 || pages > 3 {
			t.Fatalf("page %d: %+v", pages, p)
		}
		for _, l := range p.Lines {
			walked = append(walked, l.Seq)
		}
		if p.NextCursor == nil {
			break
		}
		query = "?limit=2&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	if len(walked) != 5 {
		t.Fatalf("walked %v", walked)
	}
	for i, l := range all.Lines {
		if walked[i] != l.Seq {
			t.Fatalf("walked %v, unpaged %+v", walked, all.Lines)
		}
	}
	if c, b := e.do("GET", "/v1/accounts/client:acme/statement?limit=0", e.client, "", ""); c != 400 || !strings.Contains(string(b), "limit") {
		t.Errorf("limit=0: %d %s", c, b)
	}
}
