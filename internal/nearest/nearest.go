// Package nearest finds the known name closest to a mistyped one, for the
// "did you mean" of configuration errors (environment variables, scenario
// file fields).
package nearest

// Name returns the known name nearest to s by Levenshtein distance (over
// bytes: the names are ASCII) and that distance; the caller decides how
// near is near enough. With no known names it returns "" and -1.
func Name(s string, known []string) (string, int) {
	best, bestD := "", -1
	for _, k := range known {
		if d := distance(s, k); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	return best, bestD
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
