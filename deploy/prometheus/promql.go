package prometheus

import (
	"slices"
	"strings"
)

// promqlKeywords are identifiers of PromQL that are not metric names when
// they are not followed by "(" (aggregations may be: "sum by (x) (...)").
func promqlKeywords() []string {
	return []string{
		"and", "or", "unless", "by", "without", "on", "ignoring",
		"group_left", "group_right", "bool", "offset", "atan2",
		"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
		"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
		"inf", "nan",
	}
}

// labelListKeywords are followed by a parenthesised list of label names.
func labelListKeywords() []string {
	return []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
}

// ExprMetricNames returns the metric names an expression selects, in order
// of first use. It is a small lexer, not a PromQL parser: it skips strings,
// label matchers ({...}), ranges ([...]), Grafana variables ($x, ${x}),
// numbers, keywords, function names and the label lists of by, without, on,
// ignoring and group_left/right. That is enough to check rule and
// dashboard expressions against the metric contract.
func ExprMetricNames(expr string) []string {
	var names []string
	s := expr
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(s, i)
		case c == '{':
			i = skipBalanced(s, i, '{', '}')
		case c == '[':
			i = skipBalanced(s, i, '[', ']')
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				i = skipBalanced(s, i, '{', '}')
			} else {
				for i < len(s) && isIdentChar(s[i]) {
					i++
				}
			}
		case c == '#': // comment to end of line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case isDigit(c) || (c == '.' && i+1 < len(s) && isDigit(s[i+1])):
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(s) && isIdentChar(s[i]) {
				i++
			}
			word := s[start:i]
			j := i
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r') {
				j++
			}
			lower := strings.ToLower(word)
			switch {
			case slices.Contains(labelListKeywords(), lower):
				if j < len(s) && s[j] == '(' {
					i = skipBalanced(s, j, '(', ')')
				}
			case j < len(s) && s[j] == '(':
				// A function or an aggregation call: its arguments are lexed.
			case slices.Contains(promqlKeywords(), lower):
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
		default:
			i++
		}
	}
	return names
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) int {
	quote := s[i]
	i++
	for i < len(s) {
		switch {
		case s[i] == '\\' && quote != '`':
			i += 2
		case s[i] == quote:
			return i + 1
		default:
			i++
		}
	}
	return i
}

// skipBalanced returns the index after the bracket that closes the one at
// i, skipping string literals inside.
func skipBalanced(s string, i int, open, closing byte) int {
	depth := 0
	for i < len(s) {
		switch c := s[i]; {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(s, i)
			continue
		case c == open:
			depth++
		case c == closing:
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return i
}
