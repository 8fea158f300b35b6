package upstream

import (
	"context"
	"fmt"
)

// DefaultMaxPages bounds a listing when PageOptions.MaxPages is 0: a source
// whose next links never end is broken.
const DefaultMaxPages = 1000

// A Page is one decoded page of a listing. Each source's page shape says
// in Contents where its items and its next link are.
type Page[T any] interface {
	// Contents are the page's items and the link to the next page, "" after
	// the last: absolute, or a path under the first base URL. An error
	// (wrapping ErrBadResponse) says the page is malformed.
	Contents() (items []T, next string, err error)
}

// ListPage is a page as the ZGW APIs and Open Klant (Django REST framework)
// serve lists: {"count", "next", "previous", "results"}.
type ListPage[T any] struct {
	// Next is the link to the following page; null or absent after the last.
	Next *string `json:"next"`
	// Results are the page's items; null or absent is a malformed page.
	Results *[]T `json:"results"`
}

// Contents refuses a page without results: a list that lost them is not an
// empty list.
func (p ListPage[T]) Contents() ([]T, string, error) {
	if p.Results == nil {
		return nil, "", fmt.Errorf("%w: page without results", ErrBadResponse)
	}
	next := ""
	if p.Next != nil {
		next = *p.Next
	}
	return *p.Results, next, nil
}

// PageOptions tunes Pages. The zero value means DefaultMaxPages and no check
// of next links beyond Follow's.
type PageOptions struct {
	// MaxPages is how many pages one listing may have; 0 means DefaultMaxPages.
	MaxPages int
	// CheckNext, when set, vets every next link (absolute, under the base
	// URLs, not seen before) before it is requested, e.g. that it still
	// carries the listing's filter.
	CheckNext func(link string) error
}

// Pages reads the listing that starts at first, page by page, and calls each
// for every item in order. get reads the page at link (absolute, under the
// source's base URLs) into page: the connector's own authenticated read.
// Next links go through c.Follow, so a link outside the base URLs is never
// requested, and a listing stops at the first error.
//
// Errors: the first error of get, each or opts.CheckNext, unchanged;
// ErrForeignLink for a link outside the base URLs; ErrBadResponse for a
// malformed page (Contents), a next link seen before in this listing (it
// would loop), or more than MaxPages pages. No error names a link: query
// strings hold BSNs.
func Pages[T any, P Page[T]](ctx context.Context, c *Client, first string, get func(ctx context.Context, link string, page *P) error, each func(T) error, opts PageOptions) error {
	limit := opts.MaxPages
	if limit <= 0 {
		limit = DefaultMaxPages
	}
	link, err := c.Follow(first)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for n := 1; ; n++ {
		seen[link] = true
		var page P
		if err := get(ctx, link, &page); err != nil {
			return err
		}
		items, next, err := page.Contents()
		if err != nil {
			return fmt.Errorf("%s: %w", c.cfg.Name, err)
		}
		for _, item := range items {
			if err := each(item); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		if n == limit {
			return fmt.Errorf("%s: %w: more than %d pages", c.cfg.Name, ErrBadResponse, limit)
		}
		if link, err = c.Follow(next); err != nil {
			return err
		}
		if seen[link] {
			return fmt.Errorf("%s: %w: a next link repeats an earlier page", c.cfg.Name, ErrBadResponse)
		}
		if opts.CheckNext != nil {
			if err := opts.CheckNext(link); err != nil {
				return err
			}
		}
	}
}
