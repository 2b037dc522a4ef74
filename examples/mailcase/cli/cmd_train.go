package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/emailcrm/emailcrm/routing"
)

// runTrain trains the naive Bayes classifier of package routing from a
// directory of labelled mail (DIR/CATEGORY/*.eml) and writes its model; a
// rules file uses it under classifier.model. With --eval it first reports
// precision and recall per category on a held-out split.
func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("train", "--labels DIR [--out FILE] [--eval] [--holdout F] [--seed N]", stderr)
	labels := fset.String("labels", "", "directory of labelled mail: one subdirectory per category holding .eml files")
	out := fset.String("out", "model.json", "model file to write (versioned JSON, read by the classifier of a rules file)")
	eval := fset.Bool("eval", false, "first train on a split and print precision and recall per category on the held-out part")
	holdout := fset.Float64("holdout", 0.2, "fraction of each category held out by --eval")
	seed := fset.Uint64("seed", 1, "seed of the --eval split")
	keepAccents := fset.Bool("keep-accents", false, "keep accents significant (default: café matches cafe)")
	minCount := fset.Int("min-count", 0, "drop features seen in fewer mails (0 means 2)")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if *labels == "" || len(pos) > 0 {
		fset.Usage()
		return usageError("train needs --labels DIR and no other arguments")
	}
	if *holdout <= 0 || *holdout >= 1 {
		return usageError("--holdout must be between 0 and 1")
	}
	examples, skipped, err := routing.ReadLabelledDir(*labels)
	if err != nil {
		return err
	}
	for _, s := range skipped {
		fmt.Fprintf(stderr, "mailcase train: skipped %s\n", s)
	}
	if len(examples) == 0 {
		return fmt.Errorf("no labelled mail in %s (want DIR/CATEGORY/*.eml)", *labels)
	}
	counts := map[string]int{}
	for _, ex := range examples {
		counts[ex.Category]++
	}
	fmt.Fprintf(stdout, "%d mails in %d categories from %s\n", len(examples), len(counts), *labels)
	opts := &routing.TrainOptions{Text: routing.TextOptions{KeepAccents: *keepAccents}, MinCount: *minCount}

	if *eval {
		train, test := routing.SplitExamples(examples, *holdout, *seed)
		nb, err := routing.Train(train, opts)
		if err != nil {
			return err
		}
		ev, err := routing.Evaluate(ctx, nb, test)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nheld-out evaluation: trained on %d, tested on %d (holdout %.2f, seed %d)\n\n",
			len(train), len(test), *holdout, *seed)
		fmt.Fprint(stdout, ev.String())
		const maxErrors = 20
		for i, e := range ev.Errors {
			if i == maxErrors {
				fmt.Fprintf(stdout, "  ... and %d more misclassified\n", len(ev.Errors)-maxErrors)
				break
			}
			fmt.Fprintf(stdout, "  misclassified %s\n", e)
		}
		fmt.Fprintln(stdout)
	}
	nb, err := routing.Train(examples, opts)
	if err != nil {
		return err
	}
	if err := nb.WriteFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "model trained on all %d mails (%d features) written to %s\n", len(examples), nb.Features(), *out)
	return nil
}
