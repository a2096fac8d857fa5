package api

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"sort"
	"strconv"
)

// The pagination convention of every list endpoint: the query parameters
// limit (1..MaxPageLimit, default DefaultPageLimit) and cursor (opaque,
// from a previous page's next_cursor; absent for the first page), and a
// next_cursor member in the response that is present exactly when more
// items follow. A page holds the items after the cursor's position in the
// list's fixed order, so items added meanwhile are neither skipped nor
// repeated. Clients must treat cursors as opaque strings.
//
// A handler calls ParsePage on the request's query, then PageItems on its
// items sorted by key (or fetches Limit+1 items after Page.After itself
// and calls Page.Cut), and answers a List or its own object with a
// next_cursor member.
const (
	// DefaultPageLimit is the page size when limit is absent.
	DefaultPageLimit = 100
	// MaxPageLimit is the largest limit accepted.
	MaxPageLimit = 1000
	// maxCursorLen bounds the cursor parameter before it is decoded.
	maxCursorLen = 512
)

// cursorVersion leads every cursor, so that the encoding can change
// without a client mistaking an old cursor for a new one.
const cursorVersion = 'c'

// Page is one list request's window: at most Limit items whose key is
// after After ("" for the first page).
type Page struct {
	Limit int
	After string
}

// List is the response of a list endpoint: the page's items and, when
// more follow, the cursor of the next page.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// ParsePage reads the limit and cursor parameters of q; a bad value is
// errBadRequest (400 invalid_request) saying which and why.
func ParsePage(q url.Values) (Page, error) {
	p := Page{Limit: DefaultPageLimit}
	if s := q.Get("limit"); s != "" || q.Has("limit") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxPageLimit {
			return Page{}, fmt.Errorf("%w: limit must be a whole number from 1 to %d", errBadRequest, MaxPageLimit)
		}
		p.Limit = n
	}
	if c := q.Get("cursor"); c != "" || q.Has("cursor") {
		after, ok := decodeCursor(c)
		if !ok {
			return Page{}, fmt.Errorf("%w: cursor is not one this server issued; pass next_cursor from the previous page unchanged", errBadRequest)
		}
		p.After = after
	}
	return p, nil
}

// Cursor is the opaque cursor of the page that follows the item with this
// key.
func Cursor(key string) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{cursorVersion}, key...))
}

func decodeCursor(c string) (string, bool) {
	if c == "" || len(c) > maxCursorLen {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != cursorVersion {
		return "", false
	}
	return string(b[1:]), true
}

// Cut takes a page from items, which must be the items after p.After in
// key order, at most p.Limit+1 of them (the one past the limit says that
// more follow): it returns the first p.Limit and, if any are left, the
// cursor after the last one returned.
func (p Page) Cut(items int, key func(i int) string) (n int, next string) {
	if items <= p.Limit {
		return items, ""
	}
	return p.Limit, Cursor(key(p.Limit - 1))
}

// PageItems returns the page p of items, which are sorted by key in
// ascending string order with keys unique (fixed-width numbers sort
// right: see SeqKey), and the cursor of the next page ("" at the end).
func PageItems[T any](items []T, key func(T) string, p Page) ([]T, string) {
	start := 0
	if p.After != "" {
		start = sort.Search(len(items), func(i int) bool { return key(items[i]) > p.After })
	}
	rest := items[start:]
	n, next := p.Cut(len(rest), func(i int) string { return key(rest[i]) })
	return rest[:n:n], next
}

// SeqKey is the key of a sequence number: fixed width, so that string
// order is numeric order.
func SeqKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }
