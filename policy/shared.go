package policy

import "github.com/hashicorp/hcl/v2"

// CheckNesting is checkNesting for other HCL files sesame reads (the fleet
// members file): it returns an error diagnostic where nesting first goes
// deeper than a sesame file needs, or nil. Run it before hclparse, which
// recurses once per level.
func CheckNesting(filename string, src []byte) *hcl.Diagnostic {
	return checkNesting(filename, src)
}
