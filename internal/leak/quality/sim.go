package quality

import (
	"math"
	"math/rand/v2"
)

// Family is a kind of synthetic series.
type Family int

// Families of the benchmark.
const (
	// Steady: live set constant apart from the AR(1) wander.
	Steady Family = iota
	// WarmUp: a cache that fills as C(1-exp(-t/tau)).
	WarmUp
	// Steps: one to three level steps, up or down.
	Steps
	// Diurnal: a daily sinusoidal swing.
	Diurnal
	// Leak: a series of shape Series.Base (steady, warm-up or diurnal),
	// plus a linear leak from LeakStart on.
	Leak
	// RampSteps: one to three level steps, up or down, each ramping over 5
	// to 45 minutes (a cache filling after a configuration change).
	RampSteps
)

// String names the family.
func (f Family) String() string {
	return [...]string{"steady", "warm-up", "steps", "diurnal", "leak", "ramped steps"}[f]
}

const mb = 1e6

// Series describes one synthetic series; Params draws its random shape.
type Series struct {
	Family Family
	// Base is the shape under the leak of a Leak series: Steady, WarmUp or
	// Diurnal.
	Base Family
	// Kind is the leak case a Leak series belongs to.
	Kind LeakKind
	// LeakRate is the leak in bytes per second (Leak family).
	LeakRate float64
	// LeakStart is when the leak starts, seconds from the series start.
	LeakStart float64
	// Seed makes the series reproducible.
	Seed uint64
}

// Params are the drawn parameters of a series.
type Params struct {
	Live       float64 // bytes
	WanderSD   float64 // bytes
	WanderTau  float64 // seconds
	GCGain     float64 // g in live*(1+g*phase)
	GCPeriod   float64 // mean seconds between GCs
	NoiseSD    float64 // bytes
	WarmC      float64 // bytes
	WarmTau    float64 // seconds
	StepTimes  []float64
	StepSizes  []float64
	StepRamps  []float64 // seconds each step takes (0: at once)
	DiurnalAmp float64   // half the peak-to-peak swing, bytes
	DiurnalPh  float64
}

func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

// Draw picks the parameters of s for a series of the given length (seconds).
func (s Series) Draw(r *rand.Rand, length float64) Params {
	p := Params{
		Live:      uniform(r, 100, 400) * mb,
		WanderSD:  uniform(r, 1, 5) * mb,
		WanderTau: uniform(r, 10, 60) * 60,
		GCGain:    uniform(r, 0.3, 1),
		GCPeriod:  uniform(r, 20, 180),
		NoiseSD:   uniform(r, 0.5, 3) * mb,
	}
	shape := s.Family
	if shape == Leak {
		shape = s.Base
	}
	switch shape {
	case WarmUp:
		p.WarmC = uniform(r, 50, 300) * mb
		p.WarmTau = uniform(r, 0.5, 4) * 3600
	case Steps, RampSteps:
		n := 1 + r.IntN(3)
		level := p.Live
		for range n {
			h := uniform(r, 20, 100) * mb
			if r.IntN(2) == 0 && level-h >= 50*mb {
				h = -h
			}
			level += h
			p.StepTimes = append(p.StepTimes, uniform(r, 0, length))
			p.StepSizes = append(p.StepSizes, h)
		}
		if shape == RampSteps {
			for range n {
				p.StepRamps = append(p.StepRamps, uniform(r, 5, 45)*60)
			}
		}
	case Diurnal:
		p.DiurnalAmp = uniform(r, 20, 60) * mb / 2
		p.DiurnalPh = uniform(r, 0, 2*math.Pi)
	}
	return p
}

// Generate produces the series: emit is called with the time (seconds from
// the start) and the sampled value, every step seconds for length seconds.
func (s Series) Generate(length, step float64, emit func(t, y float64)) Params {
	r := rand.New(rand.NewPCG(s.Seed, 0x9e3779b97f4a7c15))
	p := s.Draw(r, length)
	phi := math.Exp(-step / p.WanderTau)
	innov := p.WanderSD * math.Sqrt(1-phi*phi)
	wander := p.WanderSD * r.NormFloat64()
	// The first GC falls at a random point of a cycle.
	lastGC := -p.GCPeriod * r.Float64()
	nextGC := lastGC + p.GCPeriod*uniform(r, 0.6, 1.4)
	for t := 0.0; t < length; t += step {
		for t >= nextGC {
			lastGC = nextGC
			nextGC += p.GCPeriod * uniform(r, 0.6, 1.4)
		}
		phase := (t - lastGC) / (nextGC - lastGC)
		live := p.Live + wander
		if p.WarmC > 0 {
			live += p.WarmC * (1 - math.Exp(-t/p.WarmTau))
		}
		for i, st := range p.StepTimes {
			switch {
			case t < st:
			case i < len(p.StepRamps) && t < st+p.StepRamps[i]:
				live += p.StepSizes[i] * (t - st) / p.StepRamps[i]
			default:
				live += p.StepSizes[i]
			}
		}
		if p.DiurnalAmp > 0 {
			live += p.DiurnalAmp * math.Sin(2*math.Pi*t/86400+p.DiurnalPh)
		}
		if s.LeakRate > 0 && t > s.LeakStart {
			live += s.LeakRate * (t - s.LeakStart)
		}
		y := live*(1+p.GCGain*phase) + p.NoiseSD*r.NormFloat64()
		emit(t, max(y, 0))
		wander = phi*wander + innov*r.NormFloat64()
	}
	return p
}

// LeakKind is a leak case of the benchmark: the shape under the leak and
// when the leak starts.
type LeakKind int

// Leak cases.
const (
	// LeakLate: a steady series whose leak starts at Options.LeakStart.
	LeakLate LeakKind = iota
	// LeakDiurnal: a series with a daily cycle whose leak starts at
	// Options.LeakStart.
	LeakDiurnal
	// LeakFromStart: a steady series leaking from process start.
	LeakFromStart
	// LeakWarmStart: a warm-up from process start with a leak under it
	// from process start.
	LeakWarmStart
)

// String names the leak case.
func (k LeakKind) String() string {
	return [...]string{"steady", "daily cycle", "from start", "warm-up + from start"}[k]
}

// base is the shape under the leak, and fromStart whether it leaks from
// process start.
func (k LeakKind) base() (base Family, fromStart bool) {
	switch k {
	case LeakDiurnal:
		return Diurnal, false
	case LeakFromStart:
		return Steady, true
	case LeakWarmStart:
		return WarmUp, true
	}
	return Steady, false
}
