package routing

import (
	"context"
	"sort"
)

// A Classifier predicts the intent (category) of a mail with a confidence. An error means the classifier itself failed. NaiveBayes is the
// built-in implementation; an external NLP service can be plugged in.
type Classifier interface {
	// Classify returns predictions best first; confidences are in [0, 1].
	Classify(ctx context.Context, doc Document) ([]Prediction, error)
}

// ClassifierFunc adapts a function to Classifier.
type ClassifierFunc func(ctx context.Context, doc Document) ([]Prediction, error)

// Classify calls f(ctx, doc).
func (f ClassifierFunc) Classify(ctx context.Context, doc Document) ([]Prediction, error) {
	return f(ctx, doc)
}

var _ Classifier = ClassifierFunc(nil)

// Document is the text a classifier sees.
type Document struct {
	Subject string
	Body    string
}

// Prediction is one category with its confidence.
type Prediction struct {
	Category   string  `json:"category"`
	Confidence float64 `json:"confidence"`
}

// sortPredictions orders predictions best first, then by category.
func sortPredictions(p []Prediction) {
	sort.SliceStable(p, func(i, j int) bool {
		if p[i].Confidence != p[j].Confidence {
			return p[i].Confidence > p[j].Confidence
		}
		return p[i].Category < p[j].Category
	})
}
