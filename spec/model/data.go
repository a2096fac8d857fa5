package model

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
	"github.com/beluga-compute/beluga/spec/dataset"
)

// Data is a job's data, checked against the spec's commitments: an MLP's
// labelled training set (and its test set, if the spec has one), or a
// GPT's text corpus.
type Data struct {
	// Train and Test are an MLP's sets (Test nil without a test split).
	Train, Test *dataset.Dataset
	// Text is a GPT's corpus.
	Text *dataset.Text
}

// DataOptions say where LoadData finds the bytes a spec names. The zero
// value reads every source from its default place.
type DataOptions struct {
	// IDXDir holds the IDX files of a "fashion-mnist" or "idx" source
	// (default dataset.DefaultFashionMNISTDir).
	IDXDir string
	// FortunesDir holds the cookie files of a "fortunes" source (default
	// dataset.FortunesDir).
	FortunesDir string
	// TextFile is the corpus of a "text" source; it has no default.
	TextFile string
}

// LoadData finds the data of s and checks it against the spec's
// commitments: an MLP's sets as catalog.LoadData does (synthetic data is
// generated; IDX files come from opts.IDXDir), a GPT's corpus from the
// fortunes directory or the text file, which must have exactly
// data.text.bytes bytes and the root data.text.root. Mismatches wrap
// ErrDataMismatch.
func LoadData(s *spec.Spec, opts DataOptions) (*Data, error) {
	if !s.IsGPT() {
		train, test, err := catalog.LoadData(s, opts.IDXDir)
		if err != nil {
			return nil, err
		}
		return &Data{Train: train, Test: test}, nil
	}
	td := s.Data.Text
	if td == nil {
		return nil, fmt.Errorf("%w: the GPT spec names no corpus (data.text)", spec.ErrInvalid)
	}
	var corpus []byte
	var err error
	switch s.Data.Source {
	case spec.SourceFortunes:
		dir := opts.FortunesDir
		if dir == "" {
			dir = dataset.FortunesDir
		}
		corpus, err = dataset.LoadFortunes(dir)
	case spec.SourceText:
		if opts.TextFile == "" {
			return nil, fmt.Errorf("data source %q: the spec names a corpus of %d bytes by its root; give the file that holds it", spec.SourceText, td.Bytes)
		}
		corpus, err = readCorpus(opts.TextFile, td.Bytes)
	default:
		return nil, fmt.Errorf("%w: data source %q for a GPT", spec.ErrUnsupported, s.Data.Source)
	}
	if err != nil {
		return nil, err
	}
	return NewTextData(s, corpus)
}

// readCorpus reads the file at path, refusing one that is not exactly
// want bytes before reading it whole.
func readCorpus(path string, want int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load text corpus: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() != int64(want) {
		return nil, fmt.Errorf("%w: %s has %d bytes, the spec's corpus has %d", ErrDataMismatch, path, fi.Size(), want)
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(want)+1))
	if err != nil {
		return nil, fmt.Errorf("load text corpus: read %s: %w", path, err)
	}
	if len(b) != want {
		return nil, fmt.Errorf("%w: %s has %s bytes, the spec's corpus has %d", ErrDataMismatch, path, atLeast(len(b), want), want)
	}
	return b, nil
}

func atLeast(n, want int) string {
	if n > want {
		return fmt.Sprintf("more than %d", want)
	}
	return fmt.Sprint(n)
}

// NewTextData commits to corpus and returns it as the data of the GPT
// spec s if it is the corpus s names (size and root); otherwise the error
// wraps ErrDataMismatch.
func NewTextData(s *spec.Spec, corpus []byte) (*Data, error) {
	if !s.IsGPT() || s.Data.Text == nil {
		return nil, fmt.Errorf("%w: the spec is an MLP; text data is a GPT's", spec.ErrUnsupported)
	}
	if n := s.Data.Text.Bytes; len(corpus) != n {
		return nil, fmt.Errorf("%w: the corpus has %d bytes, the spec's has %d", ErrDataMismatch, len(corpus), n)
	}
	t, err := dataset.NewText(corpus)
	if err != nil {
		return nil, err
	}
	d := &Data{Text: t}
	if err := CheckData(s, d); err != nil {
		return nil, err
	}
	return d, nil
}

// CheckData reports whether d is data for s: for an MLP, a training set
// of the spec's sample count and features (and a test set if the spec has
// one); for a GPT, a corpus of the spec's size and root. LoadData and
// NewTextData return checked data; CheckData is for data built by hand.
func CheckData(s *spec.Spec, d *Data) error {
	if d == nil {
		return errors.New("model: no data")
	}
	if s.IsGPT() {
		td := s.Data.Text
		if td == nil {
			return fmt.Errorf("%w: the GPT spec names no corpus (data.text)", spec.ErrInvalid)
		}
		if d.Text == nil {
			return fmt.Errorf("%w: a GPT needs its text corpus", ErrDataMismatch)
		}
		root := d.Text.Root()
		if got := hex.EncodeToString(root[:]); d.Text.Len() != td.Bytes || got != td.Root {
			return fmt.Errorf("%w: the corpus has root %s and %d bytes; the spec wants %s and %d", ErrDataMismatch, got, d.Text.Len(), td.Root, td.Bytes)
		}
		return nil
	}
	tr := d.Train
	if tr == nil {
		return fmt.Errorf("%w: an MLP needs its training set", ErrDataMismatch)
	}
	if tr.Len() != s.Data.Train.Count || tr.Features() != s.Data.Train.Features {
		return fmt.Errorf("%w: the training set has %d samples of %d features, the spec says %d of %d",
			ErrDataMismatch, tr.Len(), tr.Features(), s.Data.Train.Count, s.Data.Train.Features)
	}
	if t := s.Data.Test; t != nil && d.Test != nil && (d.Test.Len() != t.Count || d.Test.Features() != t.Features) {
		return fmt.Errorf("%w: the test set has %d samples of %d features, the spec says %d of %d",
			ErrDataMismatch, d.Test.Len(), d.Test.Features(), t.Count, t.Features)
	}
	return nil
}
