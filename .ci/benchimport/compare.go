package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"time"
)

// compare runs two shell commands in turn (A B A B ...) after one warm-up
// run each, n times each, with an optional untimed setup command before
// every run, and prints the min, median and max of each one's wall and
// CPU (user + system) seconds and of the ratios A/B taken pair by pair,
// so that a drift of the machine's speed moves both sides of a pair.
func compare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	n := fs.Int("n", 5, "timed runs of each command")
	a := fs.String("a", "", "command A (run with sh -c)")
	b := fs.String("b", "", "command B, the yardstick (run with sh -c)")
	before := fs.String("before", "", "untimed setup command run before every run of A or B")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *a == "" || *b == "" || *n < 1 {
		return fmt.Errorf("usage: benchimport compare [-n N] [-before CMD] -a CMD -b CMD")
	}
	type sample struct{ wall, cpu float64 }
	run := func(cmd string) (sample, error) {
		if *before != "" {
			if out, err := exec.Command("sh", "-c", *before).CombinedOutput(); err != nil {
				return sample{}, fmt.Errorf("setup %q: %w\n%s", *before, err, out)
			}
		}
		c := exec.Command("sh", "-c", cmd)
		c.Stderr = os.Stderr
		start := time.Now()
		err := c.Run()
		wall := time.Since(start).Seconds()
		if err != nil {
			return sample{}, fmt.Errorf("%q: %w", cmd, err)
		}
		st := c.ProcessState
		return sample{wall: wall, cpu: (st.UserTime() + st.SystemTime()).Seconds()}, nil
	}
	var as, bs []sample
	for i := -1; i < *n; i++ { // i == -1 is the warm-up
		sa, err := run(*a)
		if err != nil {
			return err
		}
		sb, err := run(*b)
		if err != nil {
			return err
		}
		if i >= 0 {
			as, bs = append(as, sa), append(bs, sb)
		}
	}
	row := func(name string, v []float64) {
		slices.Sort(v)
		fmt.Printf("%-12s %10.3f %10.3f %10.3f\n", name, v[0], v[len(v)/2], v[len(v)-1])
	}
	pick := func(s []sample, cpu bool) []float64 {
		out := make([]float64, len(s))
		for i, x := range s {
			out[i] = x.wall
			if cpu {
				out[i] = x.cpu
			}
		}
		return out
	}
	ratio := func(cpu bool) []float64 {
		x, y := pick(as, cpu), pick(bs, cpu)
		out := make([]float64, len(x))
		for i := range x {
			out[i] = x[i] / y[i]
		}
		return out
	}
	fmt.Printf("A = %s\nB = %s\n%-12s %10s %10s %10s   (%d runs each, in turn)\n", *a, *b, "", "min", "median", "max", *n)
	row("A wall s", pick(as, false))
	row("A cpu s", pick(as, true))
	row("B wall s", pick(bs, false))
	row("B cpu s", pick(bs, true))
	row("A/B wall", ratio(false))
	row("A/B cpu", ratio(true))
	return nil
}
