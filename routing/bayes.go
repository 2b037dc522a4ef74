package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Model file format written by NaiveBayes.Save.
const (
	modelFormat  = "emailcrm.routing.naive-bayes"
	modelVersion = 1
)

// ErrInvalidModel is matched (errors.Is) by errors of LoadModel and
// ReadModelFile for a model file that is not a valid model.
var ErrInvalidModel = errors.New("invalid classifier model")

// Example is one labelled mail for training and evaluation.
type Example struct {
	Category string
	Subject  string
	Body     string
	// Name identifies the example in reports (for example its file).
	Name string
}

// TrainOptions configures Train. A nil *TrainOptions means defaults.
type TrainOptions struct {
	// Text configures normalisation; it is saved with the model and used
	// again when classifying.
	Text TextOptions
	// Alpha is the additive (Laplace) smoothing; 0 means 1.
	Alpha float64
	// MinCount drops features seen in fewer training mails; 0 means 2.
	MinCount int
}

func (o *TrainOptions) withDefaults() TrainOptions {
	var r TrainOptions
	if o != nil {
		r = *o
	}
	if r.Alpha <= 0 || math.IsNaN(r.Alpha) || math.IsInf(r.Alpha, 0) {
		r.Alpha = 1
	}
	if r.MinCount <= 0 {
		r.MinCount = 2
	}
	return r
}

// NaiveBayes is a multinomial naive Bayes text classifier with binary
// feature counts. Features are the normalised words of subject and body,
// adjacent word pairs, character unigrams and bigrams of text in unspaced
// scripts (Chinese, Japanese, ...), and the subject's features once more
// marked as subject features, so the subject weighs more than the body.
// Confidences are the posterior probabilities.
//
// A NaiveBayes is immutable after Train or LoadModel and safe for concurrent
// use.
type NaiveBayes struct {
	text     TextOptions
	alpha    float64
	cats     []string
	docs     []int
	features map[string][]uint32

	norm     normalizer
	logPrior []float64
	// logLik[f][c] = log((count+alpha)/(total_c+alpha*V)); logMiss[c] is
	// the same for a zero count.
	logLik  map[string][]float64
	logMiss []float64
}

var _ Classifier = (*NaiveBayes)(nil)

// maxClassifyText bounds the text a NaiveBayes reads per part.
const maxClassifyText = 256 << 10

// featureList returns the distinct features of a document in order of first
// appearance (a fixed order keeps floating-point sums reproducible).
func featureList(n normalizer, doc Document) []string {
	seen := make(map[string]struct{})
	var out []string
	add := func(t string) {
		if _, ok := seen[t]; !ok {
			seen[t] = struct{}{}
			out = append(out, t)
		}
	}
	tokens(n.normalize(cutText(doc.Subject, maxClassifyText)), func(t string) {
		add(t)
		add("^" + t)
	})
	tokens(n.normalize(cutText(doc.Body, maxClassifyText)), add)
	return out
}

// Train builds a model from labelled examples. It needs at least two
// categories.
func Train(examples []Example, opts *TrainOptions) (*NaiveBayes, error) {
	o := opts.withDefaults()
	nb := &NaiveBayes{text: o.Text, alpha: o.Alpha, features: map[string][]uint32{}}
	n := normalizer{keepAccents: o.Text.KeepAccents}
	index := map[string]int{}
	for _, ex := range examples {
		c := strings.TrimSpace(ex.Category)
		if c == "" {
			return nil, fmt.Errorf("routing: train: example %q has no category", ex.Name)
		}
		if _, ok := index[c]; !ok {
			index[c] = len(nb.cats)
			nb.cats = append(nb.cats, c)
		}
	}
	if len(nb.cats) < 2 {
		return nil, fmt.Errorf("routing: train: need examples of at least 2 categories, have %d", len(nb.cats))
	}
	// Sort categories so that the model does not depend on example order.
	sort.Strings(nb.cats)
	for i, c := range nb.cats {
		index[c] = i
	}
	nb.docs = make([]int, len(nb.cats))
	seen := map[string]int{}
	for _, ex := range examples {
		ci := index[strings.TrimSpace(ex.Category)]
		nb.docs[ci]++
		for _, f := range featureList(n, Document{Subject: ex.Subject, Body: ex.Body}) {
			cnt := nb.features[f]
			if cnt == nil {
				cnt = make([]uint32, len(nb.cats))
				nb.features[f] = cnt
			}
			cnt[ci]++
			seen[f]++
		}
	}
	for f, k := range seen {
		if k < o.MinCount {
			delete(nb.features, f)
		}
	}
	if err := nb.prepare(); err != nil {
		return nil, fmt.Errorf("routing: train: %w", err)
	}
	return nb, nil
}

// prepare computes the log tables from the counts.
func (nb *NaiveBayes) prepare() error {
	nb.norm = normalizer{keepAccents: nb.text.KeepAccents}
	k := len(nb.cats)
	var docs float64
	for _, d := range nb.docs {
		docs += float64(d)
	}
	if docs <= 0 {
		return errors.New("no training documents")
	}
	totals := make([]float64, k)
	for _, cnt := range nb.features {
		for c, v := range cnt {
			totals[c] += float64(v)
		}
	}
	v := float64(len(nb.features))
	nb.logPrior = make([]float64, k)
	nb.logMiss = make([]float64, k)
	denom := make([]float64, k)
	for c := range k {
		// Add-one on the prior too, so an empty category is not -Inf.
		nb.logPrior[c] = math.Log((float64(nb.docs[c]) + 1) / (docs + float64(k)))
		denom[c] = math.Log(totals[c] + nb.alpha*v + nb.alpha)
		nb.logMiss[c] = math.Log(nb.alpha) - denom[c]
	}
	nb.logLik = make(map[string][]float64, len(nb.features))
	for f, cnt := range nb.features {
		l := make([]float64, k)
		for c, n := range cnt {
			l[c] = math.Log(float64(n)+nb.alpha) - denom[c]
		}
		nb.logLik[f] = l
	}
	return nil
}

// Categories returns the categories the model knows, sorted.
func (nb *NaiveBayes) Categories() []string { return append([]string(nil), nb.cats...) }

// Features returns the number of features in the model.
func (nb *NaiveBayes) Features() int { return len(nb.features) }

// Classify returns every category with its posterior probability, best
// first. Features unseen in training are ignored.
func (nb *NaiveBayes) Classify(ctx context.Context, doc Document) ([]Prediction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := len(nb.cats)
	score := append([]float64(nil), nb.logPrior...)
	for _, f := range featureList(nb.norm, doc) {
		l, ok := nb.logLik[f]
		if !ok {
			continue
		}
		for c := range k {
			score[c] += l[c]
		}
	}
	maxScore := math.Inf(-1)
	for _, s := range score {
		maxScore = math.Max(maxScore, s)
	}
	var sum float64
	for c := range score {
		score[c] = math.Exp(score[c] - maxScore)
		sum += score[c]
	}
	out := make([]Prediction, k)
	for c := range k {
		out[c] = Prediction{Category: nb.cats[c], Confidence: score[c] / sum}
	}
	sortPredictions(out)
	return out, nil
}

// modelFile is the JSON form of a model.
type modelFile struct {
	Format     string              `json:"format"`
	Version    int                 `json:"version"`
	Text       TextOptions         `json:"text"`
	Alpha      float64             `json:"alpha"`
	Categories []string            `json:"categories"`
	Documents  []int               `json:"documents"`
	Features   map[string][]uint32 `json:"features"`
}

// Save writes the model as versioned JSON.
func (nb *NaiveBayes) Save(w io.Writer) error {
	enc := json.NewEncoder(w)
	err := enc.Encode(modelFile{
		Format: modelFormat, Version: modelVersion, Text: nb.text, Alpha: nb.alpha,
		Categories: nb.cats, Documents: nb.docs, Features: nb.features,
	})
	if err != nil {
		return fmt.Errorf("routing: save model: %w", err)
	}
	return nil
}

// WriteFile saves the model to path, replacing it atomically.
func (nb *NaiveBayes) WriteFile(path string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".model-*.tmp")
	if err != nil {
		return fmt.Errorf("routing: save model: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = nb.Save(f); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("routing: save model: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("routing: save model: %w", err)
	}
	return nil
}

// LoadModel reads a model written by Save.
func LoadModel(r io.Reader) (*NaiveBayes, error) {
	nb, err := loadModel(r)
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	return nb, nil
}

func loadModel(r io.Reader) (*NaiveBayes, error) {
	var m modelFile
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	bad := func(format string, args ...any) (*NaiveBayes, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidModel, fmt.Sprintf(format, args...))
	}
	switch {
	case m.Format != modelFormat:
		return bad("format %q, want %q", m.Format, modelFormat)
	case m.Version != modelVersion:
		return bad("unsupported version %d (this build reads version %d)", m.Version, modelVersion)
	case !(m.Alpha > 0) || math.IsInf(m.Alpha, 0):
		return bad("alpha must be positive")
	case len(m.Categories) < 2:
		return bad("need at least 2 categories")
	case len(m.Documents) != len(m.Categories):
		return bad("%d document counts for %d categories", len(m.Documents), len(m.Categories))
	}
	seen := map[string]bool{}
	for i, c := range m.Categories {
		if strings.TrimSpace(c) == "" || seen[c] {
			return bad("category %d is empty or repeated", i)
		}
		seen[c] = true
		if m.Documents[i] < 0 {
			return bad("negative document count for %q", c)
		}
	}
	for f, cnt := range m.Features {
		if len(cnt) != len(m.Categories) {
			return bad("feature %q has %d counts for %d categories", f, len(cnt), len(m.Categories))
		}
	}
	if m.Features == nil {
		m.Features = map[string][]uint32{}
	}
	nb := &NaiveBayes{text: m.Text, alpha: m.Alpha, cats: m.Categories, docs: m.Documents, features: m.Features}
	if err := nb.prepare(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidModel, err)
	}
	return nb, nil
}

// ReadModelFile reads a model file written by WriteFile.
func ReadModelFile(path string) (*NaiveBayes, error) {
	nb, err := readModelFile(path)
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	return nb, nil
}

// readModelFile is ReadModelFile without the package prefix, for errors
// reported at a line of a routing configuration.
func readModelFile(path string) (*NaiveBayes, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	defer f.Close()
	nb, err := loadModel(f)
	if err != nil {
		return nil, fmt.Errorf("read model %s: %w", path, err)
	}
	return nb, nil
}

// cutText returns at most max bytes of s, cut at a rune boundary.
func cutText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && i < len(s) && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}
