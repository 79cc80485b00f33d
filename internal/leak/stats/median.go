package stats

import (
	"math"
	"slices"
)

// Median returns the median of v (the mean of the two middle values for an
// even count), or NaN for an empty slice. It reorders v in place and runs in
// expected linear time (quickselect); v must not hold NaN.
func Median(v []float64) float64 {
	n := len(v)
	switch n {
	case 0:
		return math.NaN()
	case 1:
		return v[0]
	}
	k := n / 2
	hi := selectK(v, k)
	if n%2 == 1 {
		return hi
	}
	// After selecting k, every element of v[:k] is <= v[k]: the lower middle
	// value is the largest of them.
	lo := slices.Max(v[:k])
	return lo + (hi-lo)/2
}

// selectK reorders v so that v[k] holds the value it would have if v were
// sorted, every element before it is <= v[k] and every element after is >=.
func selectK(v []float64, k int) float64 {
	lo, hi := 0, len(v)-1
	for hi > lo {
		if hi-lo < 16 {
			insertionSort(v[lo : hi+1])
			return v[k]
		}
		// Median of three as pivot, moved to v[hi].
		mid := lo + (hi-lo)/2
		if v[mid] < v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] < v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[mid] < v[hi] {
			v[mid], v[hi] = v[hi], v[mid]
		}
		pivot := v[hi]
		// Three-way partition (Dijkstra) so runs of equal values cost O(n).
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch {
			case v[i] < pivot:
				v[lt], v[i] = v[i], v[lt]
				lt++
				i++
			case v[i] > pivot:
				v[i], v[gt] = v[gt], v[i]
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return v[k]
		}
	}
	return v[k]
}

func insertionSort(v []float64) {
	for i := 1; i < len(v); i++ {
		x := v[i]
		j := i - 1
		for j >= 0 && v[j] > x {
			v[j+1] = v[j]
			j--
		}
		v[j+1] = x
	}
}

// Ranks returns the ranks (1-based) of v, giving tied values the mean of the
// ranks they span. It allocates the result and an index slice.
func Ranks(v []float64) []float64 {
	n := len(v)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case v[a] < v[b]:
			return -1
		case v[a] > v[b]:
			return 1
		}
		return 0
	})
	r := make([]float64, n)
	for i := 0; i < n; {
		j := i + 1
		for j < n && v[idx[j]] == v[idx[i]] {
			j++
		}
		// Positions i..j-1 (0-based) share ranks i+1..j: their mean.
		rank := float64(i+1+j) / 2
		for k := i; k < j; k++ {
			r[idx[k]] = rank
		}
		i = j
	}
	return r
}
