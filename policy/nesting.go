package policy

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// maxNesting bounds how deeply brackets, braces, parentheses, templates,
// template directives and runs of unary operators may nest. HCL's parser
// and evaluator recurse once per level, and a deep enough input overflows
// the goroutine stack, which is fatal rather than a panic. A sesame config
// needs four levels.
const maxNesting = 64

// closes maps each closing token to the opening token it matches.
var closes = map[hclsyntax.TokenType][]hclsyntax.TokenType{
	hclsyntax.TokenCBrace:         {hclsyntax.TokenOBrace},
	hclsyntax.TokenCBrack:         {hclsyntax.TokenOBrack},
	hclsyntax.TokenCParen:         {hclsyntax.TokenOParen},
	hclsyntax.TokenCQuote:         {hclsyntax.TokenOQuote},
	hclsyntax.TokenCHeredoc:       {hclsyntax.TokenOHeredoc},
	hclsyntax.TokenTemplateSeqEnd: {hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl},
}

// checkNesting runs HCL's own lexer (iterative, the same the parser uses)
// over src and reports where nesting first exceeds maxNesting, as an error
// diagnostic, or nil. A closing token pops only the opener it matches, so
// broken input can only count deeper than the parser goes, never shallower.
func checkNesting(filename string, src []byte) *hcl.Diagnostic {
	toks, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	var stack []hclsyntax.TokenType
	directives, unary, splats := 0, 0, 0
	for i, tok := range toks {
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			stack = append(stack, tok.Type)
			if tok.Type == hclsyntax.TokenTemplateControl && i+1 < len(toks) && toks[i+1].Type == hclsyntax.TokenIdent {
				switch string(toks[i+1].Bytes) {
				case "if", "for":
					directives++
				case "endif", "endfor":
					directives = max(directives-1, 0)
				}
			}
		case hclsyntax.TokenMinus, hclsyntax.TokenBang:
			unary++
		case hclsyntax.TokenStar:
			// Each splat ([*] or .*) nests the parse of what follows it.
			if i > 0 && (toks[i-1].Type == hclsyntax.TokenOBrack || toks[i-1].Type == hclsyntax.TokenDot) {
				splats++
			}
		case hclsyntax.TokenNewline, hclsyntax.TokenComment:
			// Neither ends a run of unary operators inside brackets.
			continue
		default:
			if want, ok := closes[tok.Type]; ok && len(stack) > 0 {
				for _, w := range want {
					if stack[len(stack)-1] == w {
						stack = stack[:len(stack)-1]
						break
					}
				}
			}
		}
		if tok.Type != hclsyntax.TokenMinus && tok.Type != hclsyntax.TokenBang {
			unary = 0
		}
		if len(stack) > maxNesting || directives > maxNesting || unary > maxNesting || splats > maxNesting {
			return &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Nested too deeply",
				Detail:   fmt.Sprintf("Brackets, braces, parentheses, strings, templates, template directives, unary operators and splats may nest at most %d deep; a sesame config needs 4.", maxNesting),
				Subject:  tok.Range.Ptr(),
			}
		}
	}
	return nil
}
