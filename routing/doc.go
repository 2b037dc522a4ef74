// Package routing decides the queue, priority, origin and category of a mail
// that opens a new case, and explains every decision. A Router
// implements mailcase.Router; build one from a YAML or JSON file with
// LoadFile or from a Config written in Go with Compile.
//
// # Evaluation order
//
// For each mail the router evaluates these stages in this order. Every rule
// that matches is listed in Route.Fired, in this order; each field (queue,
// priority, origin, category) takes the value of the first fired rule that
// sets it, so earlier stages take precedence and later ones fill what is
// left. Route.Rule names the rule that chose the queue.
//
//  0. Bypass: a mailbox with Bypass set sends every mail to its default
//     queue; nothing else is evaluated.
//  1. Thread (thread:NUMBER): a reply opening a new case linked to an older
//     one (Delivery.Thread.CaseID) follows the older case's queue.
//     Needs Options.Cases; turned off with follow_thread: false.
//  2. Sender address (sender:...): rules on the From address.
//  3. Sender domain (domain:...): rules on the From domain, which also
//     match subdomains; the most specific domain fires first.
//  4. Customer (customer:hook, customer:LEVEL): Options.CustomerHook, then
//     the rule for the support level of the matched contact (or, when it has
//     none, its account).
//  5. Classifier actions (classifier:...): the classifier predicts intents
//     with confidences; of the actions whose intent is predicted with at
//     least their min_confidence, only the one with the highest rank runs
//     (first declared on equal ranks).
//  6. Keywords (keywords:...): every queue's keyword set is scored over
//     subject and body; the best score wins if it reaches the threshold.
//     Equal scores are broken by the higher subject score, then by the set
//     declared first. Route.Scores lists the scores, best first.
//  7. Routing address (address:...): the defaults of the address the mail
//     was sent to: To and Cc recipients in header order, then the mailbox
//     address. Being last, they act as defaults.
//  8. Default: with no queue chosen, the mailbox's default queue
//     (Mailbox.DefaultQueue, which the pipeline always sets), or the
//     configuration's default_queue when the delivery has none.
//
// Mail is always routed to a group queue: the configuration
// declares its queues, every rule must target one of them, and names that
// look like mail addresses are refused.
//
// # Keywords and text
//
// Subject and body (Message.ReplyText when set, else Text) are normalised
// once: NFKC, case folding, accents removed unless text.keep_accents is set,
// white space collapsed. Keywords are normalised the same way and matched in
// one pass over each part by an Aho–Corasick automaton, so the cost does not
// grow with the number of keywords. Keywords match whole words except in
// scripts written without spaces (Chinese, Japanese, Korean, Thai, ...),
// where they match anywhere; a leading or trailing '*' drops the word
// boundary check on that side.
//
// # Configuration
//
//	version: 1
//	queues: [general, billing, technical, vip]
//	default_queue: general
//	addresses:
//	  - address: billing@example.com
//	    queue: billing
//	    origin: Email - Billing
//	senders:
//	  - domain: importantcustomer.example
//	    queue: vip
//	    priority: high
//	customers:
//	  - support_level: gold
//	    priority: high
//	classifier:
//	  model: model.json        # relative to this file
//	  actions:
//	    - intent: billing
//	      min_confidence: 0.8
//	      rank: 10
//	      queue: billing
//	keywords:
//	  threshold: 2
//	  sets:
//	    - queue: technical
//	      words: [error, crash*, "does not work", {text: outage, weight: 3}, エラー]
//	      negative: [newsletter]
//
// Errors name the file, line and rule (for example
// "rules.yaml:14: rule keywords:technical: queue "tech" is not a declared
// queue ...") and match ErrInvalidConfig.
//
// # Classifier
//
// NaiveBayes is a trainable text classifier: Train builds it from labelled
// examples (ReadLabelledDir reads a directory of category folders of .eml
// files), WriteFile and ReadModelFile save and load it as versioned JSON,
// and Evaluate measures it on a held-out split (SplitExamples). Any other
// Classifier can be plugged in with Options.Classifier.
package routing
