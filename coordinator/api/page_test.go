package api

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
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
