package routing_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/routing"
)

// TestNaiveBayesAccuracy trains on 80% of 400 generated mails in four
// categories and requires at least 90% accuracy on the held-out 20%.
func TestNaiveBayesAccuracy(t *testing.T) {
	examples := labelled(400, 7)
	train, test := routing.SplitExamples(examples, 0.2, 1)
	require.Len(t, test, 80)
	require.Len(t, train, 320)
	nb, err := routing.Train(train, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"account", "billing", "shipping", "technical"}, nb.Categories())
	ev, err := routing.Evaluate(t.Context(), nb, test)
	require.NoError(t, err)
	t.Logf("held-out evaluation (%d training mails, %d features):\n%s", len(train), nb.Features(), ev)
	for _, e := range ev.Errors {
		t.Logf("misclassified %s", e)
	}
	assert.GreaterOrEqual(t, ev.Accuracy, 0.90)
	for _, c := range ev.Classes {
		assert.Equal(t, 20, c.Support, c.Category)
	}

	// The figure holds on other generated sets and splits, not only this one.
	var sum float64
	const seeds = 8
	for seed := uint64(1); seed <= seeds; seed++ {
		train, test := routing.SplitExamples(labelled(400, seed), 0.2, seed)
		nb, err := routing.Train(train, nil)
		require.NoError(t, err)
		ev, err := routing.Evaluate(t.Context(), nb, test)
		require.NoError(t, err)
		t.Logf("seed %d: accuracy %.3f", seed, ev.Accuracy)
		assert.GreaterOrEqual(t, ev.Accuracy, 0.85, "seed %d", seed)
		sum += ev.Accuracy
	}
	t.Logf("mean accuracy over %d sets: %.3f", seeds, sum/seeds)
	assert.GreaterOrEqual(t, sum/seeds, 0.90)
}

// TestNaiveBayesNotTrivial checks that the generated set is not trivially
// separable: a classifier that only sees the subject does clearly worse.
func TestNaiveBayesNotTrivial(t *testing.T) {
	examples := labelled(400, 7)
	for i := range examples {
		examples[i].Body = ""
	}
	train, test := routing.SplitExamples(examples, 0.2, 1)
	nb, err := routing.Train(train, nil)
	require.NoError(t, err)
	ev, err := routing.Evaluate(t.Context(), nb, test)
	require.NoError(t, err)
	t.Logf("subject-only accuracy %.3f", ev.Accuracy)
	assert.Less(t, ev.Accuracy, 0.90)
}

func TestNaiveBayesSaveLoad(t *testing.T) {
	examples := labelled(200, 3)
	nb, err := routing.Train(examples, &routing.TrainOptions{MinCount: 1})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "model.json")
	require.NoError(t, nb.WriteFile(path))
	loaded, err := routing.ReadModelFile(path)
	require.NoError(t, err)
	assert.Equal(t, nb.Features(), loaded.Features())
	doc := routing.Document{Subject: "Refund request", Body: "I was charged twice, please refund the payment."}
	want, err := nb.Classify(t.Context(), doc)
	require.NoError(t, err)
	got, err := loaded.Classify(t.Context(), doc)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, "billing", got[0].Category)
	assert.Greater(t, got[0].Confidence, 0.5)
	var sum float64
	for _, p := range got {
		sum += p.Confidence
	}
	assert.InDelta(t, 1, sum, 1e-9)

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"format":"emailcrm.routing.naive-bayes","version":1`)
}

func TestNaiveBayesCJK(t *testing.T) {
	examples := []routing.Example{
		{Category: "billing", Subject: "请求退款", Body: "我的信用卡被扣款两次，请退款。"},
		{Category: "billing", Subject: "发票错误", Body: "发票金额不对，请退款。"},
		{Category: "technical", Subject: "应用崩溃", Body: "更新后应用一直崩溃，出现错误。"},
		{Category: "technical", Subject: "无法连接", Body: "设备无法连接网络，出现错误代码。"},
	}
	nb, err := routing.Train(examples, &routing.TrainOptions{MinCount: 1})
	require.NoError(t, err)
	p, err := nb.Classify(t.Context(), routing.Document{Body: "扣款两次了，我要退款"})
	require.NoError(t, err)
	assert.Equal(t, "billing", p[0].Category)
	p, err = nb.Classify(t.Context(), routing.Document{Body: "软件崩溃，错误"})
	require.NoError(t, err)
	assert.Equal(t, "technical", p[0].Category)
}

func TestTrainErrors(t *testing.T) {
	_, err := routing.Train([]routing.Example{{Category: "a", Body: "x"}}, nil)
	require.EqualError(t, err, "routing: train: need examples of at least 2 categories, have 1")
	_, err = routing.Train([]routing.Example{{Category: " ", Body: "x", Name: "m1"}}, nil)
	require.EqualError(t, err, `routing: train: example "m1" has no category`)
}

func TestLoadModelErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "not json", in: "hello", want: "routing: invalid classifier model: invalid character 'h' looking for beginning of value"},
		{name: "wrong format", in: `{"format":"x","version":1}`, want: `routing: invalid classifier model: format "x", want "emailcrm.routing.naive-bayes"`},
		{name: "future version", in: `{"format":"emailcrm.routing.naive-bayes","version":2}`, want: "routing: invalid classifier model: unsupported version 2 (this build reads version 1)"},
		{name: "bad alpha", in: `{"format":"emailcrm.routing.naive-bayes","version":1,"alpha":0,"categories":["a","b"],"documents":[1,1]}`, want: "routing: invalid classifier model: alpha must be positive"},
		{name: "one category", in: `{"format":"emailcrm.routing.naive-bayes","version":1,"alpha":1,"categories":["a"],"documents":[1]}`, want: "routing: invalid classifier model: need at least 2 categories"},
		{name: "count mismatch", in: `{"format":"emailcrm.routing.naive-bayes","version":1,"alpha":1,"categories":["a","b"],"documents":[1]}`, want: "routing: invalid classifier model: 1 document counts for 2 categories"},
		{name: "feature mismatch", in: `{"format":"emailcrm.routing.naive-bayes","version":1,"alpha":1,"categories":["a","b"],"documents":[1,1],"features":{"x":[1]}}`, want: `routing: invalid classifier model: feature "x" has 1 counts for 2 categories`},
		{name: "repeated category", in: `{"format":"emailcrm.routing.naive-bayes","version":1,"alpha":1,"categories":["a","a"],"documents":[1,1]}`, want: "routing: invalid classifier model: category 1 is empty or repeated"},
		{name: "no documents", in: `{"format":"emailcrm.routing.naive-bayes","version":1,"alpha":1,"categories":["a","b"],"documents":[0,0]}`, want: "routing: invalid classifier model: no training documents"},
		{name: "unknown field", in: `{"format":"emailcrm.routing.naive-bayes","version":1,"extra":1}`, want: `routing: invalid classifier model: json: unknown field "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := routing.LoadModel(strings.NewReader(tc.in))
			require.ErrorIs(t, err, routing.ErrInvalidModel)
			assert.EqualError(t, err, tc.want)
		})
	}
}

func TestSplitExamplesDeterministic(t *testing.T) {
	ex := labelled(41, 1)
	tr1, te1 := routing.SplitExamples(ex, 0.25, 9)
	tr2, te2 := routing.SplitExamples(ex, 0.25, 9)
	assert.Equal(t, te1, te2)
	assert.Equal(t, tr1, tr2)
	assert.Len(t, append(tr1, te1...), 41)
	_, te3 := routing.SplitExamples(ex, 0.25, 10)
	assert.NotEqual(t, te1, te3)
}

func TestReadLabelledDir(t *testing.T) {
	dir := t.TempDir()
	write := func(cat, name, content string) {
		t.Helper()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, cat), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, cat, name), []byte(content), 0o644))
	}
	write("billing", "1.eml", "From: a@example.com\r\nSubject: Refund\r\n\r\nPlease refund me.\r\n")
	write("technical", "1.eml", "From: b@example.com\r\nSubject: Crash\r\n\r\nThe app crashes.\r\n")
	write("technical", "2.eml", "")
	write("technical", "notes.txt", "ignored")
	ex, skipped, err := routing.ReadLabelledDir(dir)
	require.NoError(t, err)
	require.Len(t, ex, 2)
	assert.Equal(t, routing.Example{Category: "billing", Subject: "Refund", Body: "Please refund me.\n", Name: filepath.Join("billing", "1.eml")}, ex[0])
	require.Len(t, skipped, 1)
	assert.Contains(t, skipped[0], "2.eml")
	var buf bytes.Buffer
	_, _, err = routing.ReadLabelledDir(filepath.Join(dir, "missing"))
	require.Error(t, err)
	_ = buf
}
