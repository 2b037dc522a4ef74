package routing_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/emailcrm/emailcrm/mailcase"
)

const keywordsYAML = queuesYAML + `
keywords:
  threshold: 2
  subject_weight: 2
  body_weight: 1
  max_hits: 2
  sets:
    - queue: billing
      category: billing
      words:
        - invoice
        - refund*
        - "credit card"
        - {text: chargeback, weight: 3}
        - café
      negative:
        - newsletter
        - {text: unsubscribe, weight: 5}
    - queue: technical
      priority: high
      words: [error, crash, "*ware", エラー, 错误, 故障, ｂｕｇ, 오류]
    - queue: shipping
      words: [parcel, delivery, 包裹, 配送]
    - queue: accounts
      words: [login, password, "two-factor"]
`

func TestRoute_Keywords(t *testing.T) {
	r := compile(t, keywordsYAML, nil)
	tests := []struct {
		name       string
		subject    string
		body       string
		wantQueue  string
		wantRule   string
		wantScores []mailcase.QueueScore
		reason     string
	}{
		{name: "body hits reach threshold", body: "Your invoice and the refund.", wantQueue: "billing", wantRule: "keywords:billing",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: 2}},
			reason:     `keyword score 2 ≥ threshold 2 ("invoice", "refund*")`},
		{name: "below threshold", body: "Your invoice.", wantQueue: "general", wantRule: "default",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: 1}}, reason: "best keyword score 1 below threshold 2"},
		{name: "subject weighs double", subject: "Invoice", wantQueue: "billing", wantRule: "keywords:billing",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: 2}}},
		{name: "weights", body: "chargeback", wantQueue: "billing",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: 3}}},
		{name: "max hits per part", body: "error error error error error", wantQueue: "technical",
			wantScores: []mailcase.QueueScore{{Queue: "technical", Score: 2}}, reason: `("error"×2)`},
		{name: "max hits counted per part", subject: "error error error", body: "error error error", wantQueue: "technical",
			wantScores: []mailcase.QueueScore{{Queue: "technical", Score: 6}}},
		{name: "best score wins, scores best first", subject: "parcel", body: "invoice, delivery, crash, parcel", wantQueue: "shipping",
			wantScores: []mailcase.QueueScore{{Queue: "shipping", Score: 4}, {Queue: "billing", Score: 1}, {Queue: "technical", Score: 1}}},
		{name: "tie broken by subject score", subject: "login", body: "error error", wantQueue: "accounts",
			wantScores: []mailcase.QueueScore{{Queue: "accounts", Score: 2}, {Queue: "technical", Score: 2}},
			reason:     "tie broken by higher subject score"},
		{name: "tie broken by declaration order", body: "parcel delivery login password", wantQueue: "shipping",
			wantScores: []mailcase.QueueScore{{Queue: "shipping", Score: 2}, {Queue: "accounts", Score: 2}},
			reason:     "tie broken by declaration order"},
		{name: "negative keywords subtract", body: "invoice invoice refund newsletter", wantQueue: "billing",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: 2}}, reason: `("invoice"×2, "refund*", -"newsletter")`},
		{name: "negative keyword drops below threshold", body: "invoice refund newsletter", wantQueue: "general",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: 1}}, reason: "best keyword score 1 below threshold 2"},
		{name: "negative keywords can go below zero", body: "invoice unsubscribe", wantQueue: "general",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: -4}}},
		{name: "whole words only", body: "invoices errors parcels logins", wantQueue: "general"},
		{name: "trailing star is a prefix", body: "refunded refunds", wantQueue: "billing",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: 2}}},
		{name: "leading star is a suffix", body: "the firmware and the software", wantQueue: "technical",
			wantScores: []mailcase.QueueScore{{Queue: "technical", Score: 2}}},
		{name: "phrase across line break and case", body: "my CREDIT\n  Card was charged, the credit card", wantQueue: "billing",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: 2}}},
		{name: "punctuation is a boundary", body: "(invoice), refund!", wantQueue: "billing"},
		{name: "hyphenated keyword", body: "the two-factor code and my login", wantQueue: "accounts"},
		{name: "accents folded", body: "CAFE Café café", wantQueue: "billing",
			wantScores: []mailcase.QueueScore{{Queue: "billing", Score: 2}}},
		{name: "japanese without spaces", body: "アプリでエラーが発生しました。またエラー", wantQueue: "technical",
			wantScores: []mailcase.QueueScore{{Queue: "technical", Score: 2}}},
		{name: "half-width katakana", subject: "ｴﾗｰ", wantQueue: "technical"},
		{name: "chinese without spaces", subject: "系统出现错误", body: "设备故障，请帮忙", wantQueue: "technical",
			wantScores: []mailcase.QueueScore{{Queue: "technical", Score: 3}}},
		{name: "chinese shipping", body: "我的包裹配送延迟了", wantQueue: "shipping"},
		{name: "korean", subject: "앱 오류가 발생했습니다", wantQueue: "technical"},
		{name: "full-width latin keyword and text", body: "Found a BUG and a ｂｕｇ", wantQueue: "technical",
			wantScores: []mailcase.QueueScore{{Queue: "technical", Score: 2}}},
		{name: "latin keyword next to CJK", body: "出现error了 crash了", wantQueue: "technical"},
		{name: "empty mail", wantQueue: "general", wantRule: "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := route(t, r, mail{from: "c@x.example", subject: tc.subject, body: tc.body})
			assert.Equal(t, tc.wantQueue, got.Queue, got.Reason)
			if tc.wantRule != "" {
				assert.Equal(t, tc.wantRule, got.Rule)
			}
			if tc.wantScores != nil {
				assert.Equal(t, tc.wantScores, got.Scores)
			}
			assert.Contains(t, got.Reason, tc.reason)
		})
	}
}

func TestRoute_KeywordsEffect(t *testing.T) {
	r := compile(t, keywordsYAML, nil)
	got := route(t, r, mail{from: "c@x.example", subject: "crash"})
	assert.Equal(t, mailcase.Route{
		Queue: "technical", Priority: mailcase.PriorityHigh, Rule: "keywords:technical",
		Fired:  []string{"keywords:technical"},
		Scores: []mailcase.QueueScore{{Queue: "technical", Score: 2}},
		Reason: `queue "technical" by keywords:technical (keyword score 2 ≥ threshold 2 ("crash")); ` +
			`priority "high" by keywords:technical (keyword score 2 ≥ threshold 2 ("crash"))`,
	}, got)
}

func TestRoute_KeywordsKeepAccents(t *testing.T) {
	r := compile(t, queuesYAML+`
text:
  keep_accents: true
keywords:
  threshold: 1
  sets:
    - queue: billing
      words: [café]
`, nil)
	assert.Equal(t, "billing", route(t, r, mail{body: "CAFÉ"}).Queue)
	assert.Equal(t, "general", route(t, r, mail{body: "cafe"}).Queue)
}

func TestRoute_KeywordsSharedWord(t *testing.T) {
	r := compile(t, queuesYAML+`
keywords:
  sets:
    - queue: accounts
      words: [password, {text: reset, weight: 2}]
    - queue: technical
      words: [password, crash]
`, nil)
	got := route(t, r, mail{body: "password reset"})
	assert.Equal(t, "accounts", got.Queue)
	assert.Equal(t, []mailcase.QueueScore{{Queue: "accounts", Score: 3}, {Queue: "technical", Score: 1}}, got.Scores)
}

func TestRoute_MaxText(t *testing.T) {
	r := compile(t, queuesYAML+`
max_text: 20
keywords:
  sets:
    - queue: billing
      words: [invoice]
`, nil)
	assert.Equal(t, "billing", route(t, r, mail{body: "invoice please"}).Queue)
	assert.Equal(t, "general", route(t, r, mail{body: "a long text before the invoice"}).Queue, "text after max_text is not read")
}
