package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

// listBase is the source the listings below live on; their links carry a
// BSN in the query, as the Zaken and Klantinteracties listings do.
const listBase = "https://zaken.example/api"

func listLink(page int) string {
	return fmt.Sprintf("%s/zaken?bsn=%s&page=%d", listBase, bsn, page)
}

// listing is a fake source of pages, keyed by absolute link. It records
// the links asked for and fails the ones in fail.
type listing struct {
	pages map[string]upstream.ListPage[int]
	fail  map[string]error
	asked []string
}

func (l *listing) get(_ context.Context, link string, page *upstream.ListPage[int]) error {
	l.asked = append(l.asked, link)
	if err := l.fail[link]; err != nil {
		return err
	}
	p, ok := l.pages[link]
	if !ok {
		return fmt.Errorf("the test has no page %s", link)
	}
	*page = p
	return nil
}

// page is a page with items whose next link is next ("" for none).
func page(next string, items ...int) upstream.ListPage[int] {
	p := upstream.ListPage[int]{Results: &items}
	if next != "" {
		p.Next = &next
	}
	return p
}

// chain is n pages linked in order, two items each (1, 2 on page 1, ...).
func chain(n int) map[string]upstream.ListPage[int] {
	out := map[string]upstream.ListPage[int]{}
	for i := 1; i <= n; i++ {
		next := ""
		if i < n {
			next = listLink(i + 1)
		}
		out[listLink(i)] = page(next, 2*i-1, 2*i)
	}
	return out
}

func TestPages(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	stop := errors.New("enough")
	tests := []struct {
		name  string
		first string
		pages map[string]upstream.ListPage[int]
		fail  map[string]error
		opts  upstream.PageOptions
		// stopAt makes each fail with stop at this item.
		stopAt int
		want   error
		items  []int
		asked  []string
	}{
		{
			name: "every page is read in order", first: listLink(1), pages: chain(3),
			items: []int{1, 2, 3, 4, 5, 6}, asked: []string{listLink(1), listLink(2), listLink(3)},
		},
		{
			name: "a next link that is a path is resolved against the first base URL", first: listLink(1),
			pages: map[string]upstream.ListPage[int]{
				listLink(1): page(strings.TrimPrefix(listLink(2), "https://zaken.example"), 1),
				listLink(2): page("", 2),
			},
			items: []int{1, 2}, asked: []string{listLink(1), listLink(2)},
		},
		{
			name: "a page without items goes on to the next", first: listLink(1),
			pages: map[string]upstream.ListPage[int]{listLink(1): page(listLink(2)), listLink(2): page("", 7)},
			items: []int{7}, asked: []string{listLink(1), listLink(2)},
		},
		{
			name: "a next link back to an earlier page is a bad response, not a loop", first: listLink(1),
			pages: map[string]upstream.ListPage[int]{listLink(1): page(listLink(2), 1), listLink(2): page(listLink(1), 2)},
			want:  upstream.ErrBadResponse, items: []int{1, 2}, asked: []string{listLink(1), listLink(2)},
		},
		{
			name: "a next link to the page itself is a bad response", first: listLink(1),
			pages: map[string]upstream.ListPage[int]{listLink(1): page(listLink(1), 1)},
			want:  upstream.ErrBadResponse, items: []int{1}, asked: []string{listLink(1)},
		},
		{
			name: "a listing of MaxPages pages is read whole", first: listLink(1), pages: chain(3),
			opts:  upstream.PageOptions{MaxPages: 3},
			items: []int{1, 2, 3, 4, 5, 6}, asked: []string{listLink(1), listLink(2), listLink(3)},
		},
		{
			name: "a listing longer than MaxPages is a bad response after MaxPages pages", first: listLink(1), pages: chain(3),
			opts: upstream.PageOptions{MaxPages: 2},
			want: upstream.ErrBadResponse, items: []int{1, 2, 3, 4}, asked: []string{listLink(1), listLink(2)},
		},
		{
			name: "a next link to another host is foreign and never requested", first: listLink(1),
			pages: map[string]upstream.ListPage[int]{listLink(1): page("https://elders.example/api/zaken/"+bsn+"?bsn="+bsn, 1)},
			want:  upstream.ErrForeignLink, items: []int{1}, asked: []string{listLink(1)},
		},
		{
			name: "a next link outside the base path is foreign and never requested", first: listLink(1),
			pages: map[string]upstream.ListPage[int]{listLink(1): page("https://zaken.example/admin/zaken?bsn="+bsn, 1)},
			want:  upstream.ErrForeignLink, items: []int{1}, asked: []string{listLink(1)},
		},
		{
			name: "a first link outside the base URLs is never requested", first: "https://elders.example/api/zaken?bsn=" + bsn,
			want: upstream.ErrForeignLink,
		},
		{
			name: "an error reading a page mid-way stops the listing with that error", first: listLink(1), pages: chain(3),
			fail: map[string]error{listLink(2): boom},
			want: boom, items: []int{1, 2}, asked: []string{listLink(1), listLink(2)},
		},
		{
			name: "an error of each stops the listing at that item", first: listLink(1), pages: chain(3),
			stopAt: 3,
			want:   stop, items: []int{1, 2, 3}, asked: []string{listLink(1), listLink(2)},
		},
		{
			name: "an error of CheckNext stops before the next page is requested", first: listLink(1), pages: chain(3),
			opts: upstream.PageOptions{CheckNext: func(link string) error {
				if strings.HasSuffix(link, "page=3") {
					return boom
				}
				return nil
			}},
			want: boom, items: []int{1, 2, 3, 4}, asked: []string{listLink(1), listLink(2)},
		},
		{
			name: "a page without results is a bad response", first: listLink(1),
			pages: map[string]upstream.ListPage[int]{listLink(1): {}},
			want:  upstream.ErrBadResponse, asked: []string{listLink(1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, upstream.Config{Name: "zaken", BaseURLs: []string{listBase}})
			src := &listing{pages: tt.pages, fail: tt.fail}
			var items []int
			err := upstream.Pages(t.Context(), c, tt.first, src.get, func(item int) error {
				items = append(items, item)
				if item == tt.stopAt {
					return stop
				}
				return nil
			}, tt.opts)
			if tt.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.want)
				assert.NotContains(t, err.Error(), bsn, "errors never name a link's query")
				assert.True(t, err == tt.want || strings.HasPrefix(err.Error(), "zaken: "), "error %q names the source", err)
			}
			assert.Equal(t, tt.items, items)
			assert.Equal(t, tt.asked, src.asked)
		})
	}
}

func TestPages_DefaultMaxPages(t *testing.T) {
	t.Parallel()
	c := newClient(t, upstream.Config{Name: "zaken", BaseURLs: []string{listBase}})
	src := &listing{pages: chain(upstream.DefaultMaxPages + 1)}
	n := 0
	err := upstream.Pages(t.Context(), c, listLink(1), src.get, func(int) error { n++; return nil }, upstream.PageOptions{})
	require.ErrorIs(t, err, upstream.ErrBadResponse)
	assert.Len(t, src.asked, upstream.DefaultMaxPages)
	assert.Equal(t, 2*upstream.DefaultMaxPages, n)
}

func TestPages_OverHTTP(t *testing.T) {
	t.Parallel()
	src := startSource(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("page") == "" {
			_, _ = fmt.Fprintf(w, `{"count":3,"next":"http://%s/api/zaken?page=2","previous":null,"results":[1,2]}`, r.Host)
			return
		}
		_, _ = io.WriteString(w, `{"count":3,"next":null,"previous":"x","results":[3]}`)
	})
	c := newClient(t, fast(src.base))
	var items []int
	err := upstream.Pages(t.Context(), c, src.base+"/zaken",
		func(ctx context.Context, link string, page *upstream.ListPage[int]) error {
			_, err := c.JSON(ctx, get(link), page)
			return err
		},
		func(item int) error { items = append(items, item); return nil },
		upstream.PageOptions{})
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3}, items)
	assert.EqualValues(t, 2, src.hits.Load())
}

func TestIsUUID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"a0000000-0000-4000-8000-000000000101", true},
		{"A0000000-ABCD-4000-8000-00000000ABCD", true},
		{"a0000000-0000-4000-8000-00000000010", false},   // one digit short
		{"a0000000-0000-4000-8000-0000000001011", false}, // one digit long
		{"a00000000000-4000-8000-000000000101", false},   // hyphen moved
		{"a0000000-0000-4000-8000-00000000010g", false},  // no hex digit
		{"{a0000000-0000-4000-8000-000000000101}", false},
		{"urn:uuid:a0000000-0000-4000-8000-000000000101", false},
		{"a00000000000400080000000000101", false},
		{"../statussen/x", false},
		{"", false},
	} {
		assert.Equal(t, tt.want, upstream.IsUUID(tt.in), tt.in)
	}
}
