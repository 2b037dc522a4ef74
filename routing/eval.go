package routing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
)

// SplitExamples splits examples into a training and a held-out test set,
// per category (stratified), testFraction of each category going to test
// (at least one when the category has two examples or more). The split is
// deterministic for a given seed and input order.
func SplitExamples(examples []Example, testFraction float64, seed uint64) (train, test []Example) {
	byCat := map[string][]Example{}
	var cats []string
	for _, ex := range examples {
		if _, ok := byCat[ex.Category]; !ok {
			cats = append(cats, ex.Category)
		}
		byCat[ex.Category] = append(byCat[ex.Category], ex)
	}
	sort.Strings(cats)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for _, c := range cats {
		exs := append([]Example(nil), byCat[c]...)
		rng.Shuffle(len(exs), func(i, j int) { exs[i], exs[j] = exs[j], exs[i] })
		n := int(float64(len(exs))*testFraction + 0.5)
		if n == 0 && len(exs) >= 2 && testFraction > 0 {
			n = 1
		}
		if n > len(exs) {
			n = len(exs)
		}
		test = append(test, exs[:n]...)
		train = append(train, exs[n:]...)
	}
	return train, test
}

// CategoryStats are the figures of one category in an Evaluation.
type CategoryStats struct {
	Category string `json:"category"`
	// Support is the number of test examples of the category; Predicted
	// the number predicted as it; Correct the true positives.
	Support   int     `json:"support"`
	Predicted int     `json:"predicted"`
	Correct   int     `json:"correct"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

// Evaluation is the result of Evaluate.
type Evaluation struct {
	Total    int             `json:"total"`
	Correct  int             `json:"correct"`
	Accuracy float64         `json:"accuracy"`
	Classes  []CategoryStats `json:"categories"`
	// Errors lists misclassified examples as "name: want → got".
	Errors []string `json:"errors,omitempty"`
}

// Evaluate classifies every example and compares the best prediction with
// its label.
func Evaluate(ctx context.Context, c Classifier, examples []Example) (*Evaluation, error) {
	stats := map[string]*CategoryStats{}
	get := func(cat string) *CategoryStats {
		s, ok := stats[cat]
		if !ok {
			s = &CategoryStats{Category: cat}
			stats[cat] = s
		}
		return s
	}
	ev := &Evaluation{}
	for _, ex := range examples {
		preds, err := c.Classify(ctx, Document{Subject: ex.Subject, Body: ex.Body})
		if err != nil {
			return nil, fmt.Errorf("routing: evaluate %s: %w", ex.Name, err)
		}
		got := ""
		if len(preds) > 0 {
			got = preds[0].Category
		}
		ev.Total++
		get(ex.Category).Support++
		if got != "" {
			get(got).Predicted++
		}
		if got == ex.Category {
			ev.Correct++
			get(got).Correct++
		} else {
			ev.Errors = append(ev.Errors, fmt.Sprintf("%s: %s → %s", ex.Name, ex.Category, got))
		}
	}
	if ev.Total > 0 {
		ev.Accuracy = float64(ev.Correct) / float64(ev.Total)
	}
	for _, s := range stats {
		if s.Predicted > 0 {
			s.Precision = float64(s.Correct) / float64(s.Predicted)
		}
		if s.Support > 0 {
			s.Recall = float64(s.Correct) / float64(s.Support)
		}
		if s.Precision+s.Recall > 0 {
			s.F1 = 2 * s.Precision * s.Recall / (s.Precision + s.Recall)
		}
		ev.Classes = append(ev.Classes, *s)
	}
	sort.Slice(ev.Classes, func(i, j int) bool { return ev.Classes[i].Category < ev.Classes[j].Category })
	return ev, nil
}

// String formats the evaluation as a table.
func (e *Evaluation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-20s %9s %9s %9s %7s\n", "category", "precision", "recall", "f1", "support")
	for _, s := range e.Classes {
		fmt.Fprintf(&b, "%-20s %9.3f %9.3f %9.3f %7d\n", s.Category, s.Precision, s.Recall, s.F1, s.Support)
	}
	fmt.Fprintf(&b, "accuracy %.3f (%d/%d)\n", e.Accuracy, e.Correct, e.Total)
	return b.String()
}

// ReadLabelledDir reads labelled mail: every subdirectory of dir is a
// category holding .eml files. Files that cannot be read or parsed are
// skipped and reported in skipped; one bad mail does not stop the others.
func ReadLabelledDir(dir string) (examples []Example, skipped []string, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("routing: read labelled mail: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		cat := e.Name()
		files, err := filepath.Glob(filepath.Join(dir, cat, "*.eml"))
		if err != nil {
			return nil, nil, fmt.Errorf("routing: read labelled mail: %w", err)
		}
		sort.Strings(files)
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("%s: %v", f, err))
				continue
			}
			m, err := mailcase.ParseMessage(raw, nil)
			if err != nil {
				skipped = append(skipped, fmt.Sprintf("%s: %v", f, err))
				continue
			}
			examples = append(examples, Example{Category: cat, Subject: m.Subject, Body: m.Text, Name: filepath.Join(cat, filepath.Base(f))})
		}
	}
	return examples, skipped, nil
}
