package routing_test

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/emailcrm/emailcrm/routing"
)

// labelled generates n realistic support mails in four categories
// (billing, technical, shipping, account), deterministically from seed.
// The categories share vocabulary (order, account, payment, app, please,
// problem...), 40% of the mails carry a sentence of another
// category, 30% of subjects say nothing ("Help", "Question"),
// bodies have one or two sentences of their own category among fillers,
// and words get typos, so the set is not trivially separable.
func labelled(n int, seed uint64) []routing.Example {
	g := &gen{r: rand.New(rand.NewPCG(seed, 42))}
	cats := []string{"account", "billing", "shipping", "technical"}
	out := make([]routing.Example, 0, n)
	for i := range n {
		c := cats[i%len(cats)]
		subj, body := g.mail(c)
		out = append(out, routing.Example{Category: c, Subject: subj, Body: body, Name: fmt.Sprintf("%s-%03d", c, i)})
	}
	return out
}

type gen struct{ r *rand.Rand }

func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *gen) fill(s string) string {
	repl := []struct {
		slot string
		f    func() string
	}{
		{"{order}", func() string { return fmt.Sprintf("%d", 100000+g.r.IntN(900000)) }},
		{"{amount}", func() string { return fmt.Sprintf("%d.%02d", 5+g.r.IntN(900), g.r.IntN(100)) }},
		{"{product}", func() string { return g.pick(products) }},
		{"{date}", func() string { return g.pick(dates) }},
		{"{carrier}", func() string { return g.pick([]string{"DHL", "UPS", "FedEx", "La Poste", "Royal Mail", "the courier"}) }},
		{"{device}", func() string {
			return g.pick([]string{"iPhone", "Android phone", "Windows laptop", "Mac", "tablet", "Chromebook"})
		}},
		{"{code}", func() string { return fmt.Sprintf("%s-%d", g.pick([]string{"E", "ERR", "X", "0x"}), 100+g.r.IntN(900)) }},
		{"{month}", func() string { return g.pick([]string{"January", "March", "May", "July", "September", "November"}) }},
	}
	for _, r := range repl { // fixed order: the generator must be deterministic
		for strings.Contains(s, r.slot) {
			s = strings.Replace(s, r.slot, r.f(), 1)
		}
	}
	return s
}

var (
	products = []string{"Pro plan", "starter kit", "XR-200 router", "family subscription", "desk lamp", "premium bundle", "mobile app", "coffee grinder"}
	dates    = []string{"Monday", "last week", "yesterday", "March 3", "the 14th", "two weeks ago", "Friday"}

	greetings = []string{"Hello,", "Hi,", "Dear support team,", "Good morning,", "Hi there,", "Hello team,", "", "To whom it may concern,"}
	closings  = []string{"Thanks,", "Regards,", "Best regards,", "Thank you in advance,", "Cheers,", "Kind regards,", ""}
	names     = []string{"Anna", "Jean Dupont", "M. Rossi", "Peter", "Sofia Garcia", "Li Wei", "Tom", "Olga K."}
	fillers   = []string{
		"I have been a customer for years and this is the first time I write to you.",
		"Please help me as soon as possible.",
		"I already tried to call but nobody answered.",
		"Could you please look into this?",
		"This is quite urgent for us.",
		"My order number is {order} in case you need it.",
		"I am writing about my account with you.",
		"I placed the order for the {product} on {date}.",
		"Let me know if you need more information.",
		"I hope you can sort this out quickly.",
		"Sorry for the long message.",
		"We use the {product} in our office.",
		"My colleague had the same problem last month.",
		"I would appreciate a quick answer.",
	}
	generic = []string{"Help", "Question", "Urgent", "Problem with my order", "Need assistance", "Re: your message", "Issue", "Please help", "Request", "Fwd: order {order}"}

	subjects = map[string][]string{
		"billing": {"Invoice {order} is wrong", "Charged twice", "Refund request", "Question about my bill", "Payment problem",
			"Wrong amount on invoice", "Cancel my subscription and refund", "Double charge on my card", "VAT missing on invoice", "Billing question"},
		"technical": {"App crashes on start", "Error {code} when saving", "Cannot connect the {product}", "Bug in the latest update",
			"Sync not working", "The {product} keeps freezing", "Error message after update", "Wifi drops every hour", "Feature broken", "Software problem"},
		"shipping": {"Where is my parcel?", "Order {order} not delivered", "Package arrived damaged", "Tracking number not working",
			"Delivery late", "Wrong item received", "Shipping address change", "Parcel lost by {carrier}", "Missing item in box", "Delivery problem"},
		"account": {"Cannot log in", "Password reset not working", "Locked out of my account", "Change my email address",
			"Two-factor code not received", "Delete my account", "Account hacked?", "Username forgotten", "Login problem", "Update my profile"},
	}
	core = map[string][]string{
		"billing": {
			"I was charged {amount} twice for the same order.",
			"The invoice shows {amount} but the price on your website was lower.",
			"Please refund the payment of {amount}, I cancelled before the renewal.",
			"My credit card statement shows a charge from you that I do not recognise.",
			"The VAT number of our company is missing on the invoice.",
			"I would like a copy of the invoice for {month} for our accounting.",
			"You billed me for the {product} although I returned it.",
			"The direct debit failed and now there is a late fee on my bill.",
			"Can I pay by bank transfer instead of card?",
			"I was promised a discount but the full price was charged.",
			"Your subscription renewed automatically and took {amount} from my card.",
			"The refund you promised on {date} has still not reached my bank account.",
			"Please change the billing address on future invoices.",
			"Why did the price of my plan go up this month?",
		},
		"technical": {
			"The app crashes every time I open the settings screen on my {device}.",
			"I get error {code} when I try to save a document.",
			"Since the last update the {product} does not connect to the wifi anymore.",
			"The sync between my {device} and the web version stopped working.",
			"The screen stays black after the logo appears.",
			"I reinstalled the software twice but the bug is still there.",
			"The export to PDF produces an empty file.",
			"The {product} restarts by itself every few hours.",
			"Notifications do not arrive on my {device} even though they are enabled.",
			"The page loads forever and then shows error {code}.",
			"The firmware update failed halfway and now the device does not boot.",
			"The search function returns no results although the data is there.",
			"Bluetooth pairing with my {device} fails with a timeout.",
			"The upload stops at 99 percent every time.",
		},
		"shipping": {
			"My parcel was supposed to arrive on {date} but it is still not here.",
			"The tracking number you sent does not work on the {carrier} website.",
			"The box arrived damaged and the {product} inside is broken.",
			"I received a different item than the one I ordered.",
			"{carrier} says the package was delivered but I never got it.",
			"Can you ship the order to my office address instead?",
			"One item is missing from the package.",
			"The delivery has been stuck in customs for a week.",
			"The courier left the parcel outside in the rain.",
			"When will the rest of my order be dispatched?",
			"I paid for express delivery but it took ten days.",
			"The tracking page has not updated since {date}.",
			"Please send a replacement, the parcel was lost in transit.",
			"I would like to return the {product} and need a shipping label.",
		},
		"account": {
			"I cannot log in, the site says my password is wrong.",
			"The password reset link in your email has expired.",
			"My account is locked after too many login attempts.",
			"I no longer have access to the phone number for two-factor codes.",
			"Please change the email address on my account to my new one.",
			"I think someone else logged into my account from another country.",
			"Please delete my account and all my personal data.",
			"I forgot my username and the recovery email never arrives.",
			"The verification code you send by SMS never arrives.",
			"I want to merge my two accounts into one.",
			"After changing my password I was logged out of every device.",
			"My profile shows the name of another person.",
			"How do I add a second user to our company account?",
			"The sign in page keeps asking me to verify my email.",
		},
	}
)

func (g *gen) typo(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		if len(w) > 4 && g.r.IntN(100) < 4 {
			b := []byte(w)
			j := 1 + g.r.IntN(len(b)-2)
			b[j], b[j+1] = b[j+1], b[j]
			words[i] = string(b)
		}
	}
	return strings.Join(words, " ")
}

func (g *gen) mail(cat string) (subject, body string) {
	if g.r.IntN(100) < 30 {
		subject = g.fill(g.pick(generic))
	} else {
		subject = g.fill(g.pick(subjects[cat]))
	}
	if g.r.IntN(100) < 10 {
		subject = strings.ToUpper(subject)
	}
	var parts []string
	if gr := g.pick(greetings); gr != "" {
		parts = append(parts, gr, "")
	}
	var sentences []string
	for range 1 + g.r.IntN(2) {
		sentences = append(sentences, g.fill(g.pick(core[cat])))
	}
	for range g.r.IntN(3) {
		sentences = append(sentences, g.fill(g.pick(fillers)))
	}
	if g.r.IntN(100) < 40 { // noise: a sentence of another category
		o := g.pick([]string{"account", "billing", "shipping", "technical"})
		if o != cat {
			s := g.fill(g.pick(core[o]))
			sentences = append(sentences, g.pick([]string{"Also, ", "By the way, ", "Last time ", ""})+strings.ToLower(s[:1])+s[1:])
		}
	}
	g.r.Shuffle(len(sentences), func(i, j int) { sentences[i], sentences[j] = sentences[j], sentences[i] })
	parts = append(parts, g.typo(strings.Join(sentences, " ")))
	if c := g.pick(closings); c != "" {
		parts = append(parts, "", c, g.pick(names))
	}
	if g.r.IntN(100) < 15 { // quoted history of an unrelated earlier mail
		parts = append(parts, "", "> On "+g.pick(dates)+" you wrote:", "> Thank you for contacting us about your order.",
			"> "+g.fill(g.pick(fillers)))
	}
	return subject, strings.Join(parts, "\n")
}
