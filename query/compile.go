package query

import (
	"errors"
	"fmt"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"github.com/maypok86/otter/v2"
)

// Defaults of Config.
const (
	DefaultCostLimit  = 10_000_000
	DefaultCacheSize  = 1024
	DefaultMaxExprLen = 4096
	// sizeBound is what the cost estimator assumes for the length of any list, map or
	// string in a document. It makes one comprehension over a field affordable and nested
	// comprehensions not; the runtime cost limit guards documents that are larger still.
	sizeBound = 1 << 17
)

// Config configures a Compiler.
type Config struct {
	// CostLimit bounds a filter's estimated worst-case cost and its actual cost on one
	// document (CEL cost units, roughly one per operation).
	CostLimit  uint64
	CacheSize  int // compiled programs kept (default 1024)
	MaxExprLen int // longest accepted filter, in bytes (default 4096)
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if c.CacheSize < 0 {
		errs = append(errs, fmt.Errorf("query: cache size must not be negative, got %d", c.CacheSize))
	}
	if c.MaxExprLen < 0 {
		errs = append(errs, fmt.Errorf("query: max expression length must not be negative, got %d", c.MaxExprLen))
	}
	return errors.Join(errs...)
}

// Compiler compiles filters into Programs and caches them by text. Safe for concurrent use.
type Compiler struct {
	cfg   Config
	env   *cel.Env
	cache *otter.Cache[string, *Program]
}

// NewCompiler returns a Compiler.
func NewCompiler(cfg Config) (*Compiler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CostLimit == 0 {
		cfg.CostLimit = DefaultCostLimit
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.MaxExprLen == 0 {
		cfg.MaxExprLen = DefaultMaxExprLen
	}
	env, err := cel.NewEnv(
		cel.Variable("doc", cel.DynType),
		cel.Variable("id", cel.StringType),
		cel.Variable("version", cel.IntType),
		cel.Variable("ts", cel.TimestampType),
		ext.Strings(),
		ext.Math(),
	)
	if err != nil {
		return nil, fmt.Errorf("query: environment: %w", err)
	}
	cache, err := otter.New(&otter.Options[string, *Program]{MaximumSize: cfg.CacheSize})
	if err != nil {
		return nil, fmt.Errorf("query: cache: %w", err)
	}
	return &Compiler{cfg: cfg, env: env, cache: cache}, nil
}

// Program is a compiled filter. Safe for concurrent use.
type Program struct {
	Expr          string
	prg           cel.Program
	conjuncts     []Predicate
	costLimit     uint64
	EstimatedCost uint64 // worst-case cost estimate per document
}

// Compile returns the program of expr, from the cache when it was compiled before. The
// empty filter matches every document.
func (c *Compiler) Compile(expr string) (*Program, error) {
	if p, ok := c.cache.GetIfPresent(expr); ok {
		return p, nil
	}
	p, err := c.compile(expr)
	if err != nil {
		return nil, err
	}
	c.cache.Set(expr, p)
	return p, nil
}

func (c *Compiler) compile(expr string) (*Program, error) {
	if len(expr) > c.cfg.MaxExprLen {
		return nil, &CompileError{Message: fmt.Sprintf("filter is %d bytes, longer than the limit of %d", len(expr), c.cfg.MaxExprLen)}
	}
	src := expr
	if src == "" {
		src = "true"
	}
	checked, iss := c.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		ce := &CompileError{Message: iss.Err().Error()}
		if errs := iss.Errors(); len(errs) > 0 {
			ce.Message = errs[0].Message
			if loc := errs[0].Location; loc != nil && loc.Line() > 0 {
				ce.Line, ce.Column = loc.Line(), loc.Column()+1
			}
		}
		return nil, ce
	}
	if !checked.OutputType().IsAssignableType(cel.BoolType) {
		return nil, &CompileError{Message: fmt.Sprintf("filter must be a bool expression, not %s", checked.OutputType())}
	}
	est, err := c.env.EstimateCost(checked, sizeEstimator{})
	if err != nil {
		return nil, &CompileError{Message: "cost estimation: " + err.Error()}
	}
	if est.Max > c.cfg.CostLimit {
		return nil, fmt.Errorf("%w: estimated worst-case cost %d per document exceeds the limit of %d", ErrTooExpensive, est.Max, c.cfg.CostLimit)
	}
	prg, err := c.env.Program(checked, cel.CostLimit(c.cfg.CostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &CompileError{Message: err.Error()}
	}
	p := &Program{Expr: expr, prg: prg, costLimit: c.cfg.CostLimit, EstimatedCost: est.Max}
	p.conjuncts = extractConjuncts(checked.NativeRep().Expr())
	return p, nil
}

// sizeEstimator bounds every variable-length value by sizeBound.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(cost.AstNode) *cost.SizeEstimate {
	return &cost.SizeEstimate{Min: 0, Max: sizeBound}
}

func (sizeEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// Doc is a document as a query sees it.
type Doc struct {
	ID      string
	Version uint64
	TS      time.Time
	Body    map[string]any
}

// match evaluates the filter on d. An evaluation error means no match, except exceeding
// the cost limit, which is ErrTooExpensive.
func (p *Program) match(d *Doc) (matched bool, evalErr bool, err error) {
	out, det, err := p.prg.Eval(map[string]any{
		"doc": d.Body, "id": d.ID, "version": int64(d.Version), "ts": d.TS,
	})
	if err != nil {
		if det != nil && det.ActualCost() != nil && *det.ActualCost() > p.costLimit {
			return false, false, fmt.Errorf("%w: actual cost on document %q exceeds the limit of %d", ErrTooExpensive, d.ID, p.costLimit)
		}
		return false, true, nil
	}
	return out == types.True, false, nil
}

// Predicate is a top-level conjunct the planner can serve: Path Op Values.
type Predicate struct {
	Field  []string // path under doc; nil for id
	Op     string   // "==", "in", "<", "<=", ">", ">="
	Values []any    // nil, bool, float64 or string; one value except for "in"
}

func (p Predicate) onID() bool { return p.Field == nil }

func extractConjuncts(e ast.Expr) []Predicate {
	var out []Predicate
	var walk func(e ast.Expr)
	walk = func(e ast.Expr) {
		if e.Kind() != ast.CallKind {
			return
		}
		call := e.AsCall()
		args := call.Args()
		if call.FunctionName() == "_&&_" && len(args) == 2 {
			walk(args[0])
			walk(args[1])
			return
		}
		if p, ok := predicate(call); ok {
			out = append(out, p)
		}
	}
	walk(e)
	return out
}

var flipped = map[string]string{"_==_": "==", "_<_": ">", "_<=_": ">=", "_>_": "<", "_>=_": "<="}
var direct = map[string]string{"_==_": "==", "_<_": "<", "_<=_": "<=", "_>_": ">", "_>=_": ">="}

func predicate(call ast.CallExpr) (Predicate, bool) {
	args := call.Args()
	if call.IsMemberFunction() || len(args) != 2 {
		return Predicate{}, false
	}
	fn := call.FunctionName()
	if fn == "@in" {
		field, ok := fieldPath(args[0])
		if !ok || args[1].Kind() != ast.ListKind {
			return Predicate{}, false
		}
		var vals []any
		for _, el := range args[1].AsList().Elements() {
			v, ok := literal(el)
			if !ok {
				return Predicate{}, false
			}
			vals = append(vals, v)
		}
		if len(vals) == 0 {
			return Predicate{}, false
		}
		return Predicate{Field: field, Op: "in", Values: vals}, true
	}
	op, ok := direct[fn]
	if !ok {
		return Predicate{}, false
	}
	if field, ok := fieldPath(args[0]); ok {
		if v, ok := literal(args[1]); ok {
			return Predicate{Field: field, Op: op, Values: []any{v}}, validOp(op, v)
		}
	}
	if field, ok := fieldPath(args[1]); ok {
		if v, ok := literal(args[0]); ok {
			op = flipped[fn]
			return Predicate{Field: field, Op: op, Values: []any{v}}, validOp(op, v)
		}
	}
	return Predicate{}, false
}

// validOp: null is only ever equal; ordering comparisons with null are errors in CEL.
func validOp(op string, v any) bool { return v != nil || op == "==" }

// fieldPath recognizes doc.a.b, doc["a"]["b"] and id. For id the path is nil and ok true.
func fieldPath(e ast.Expr) ([]string, bool) {
	var rev []string
	for {
		switch e.Kind() {
		case ast.IdentKind:
			switch e.AsIdent() {
			case "doc":
				if len(rev) == 0 {
					return nil, false // doc itself is not a field
				}
				out := make([]string, len(rev))
				for i := range rev {
					out[i] = rev[len(rev)-1-i]
				}
				return out, true
			case "id":
				if len(rev) == 0 {
					return nil, true
				}
			}
			return nil, false
		case ast.SelectKind:
			sel := e.AsSelect()
			if sel.IsTestOnly() {
				return nil, false
			}
			rev = append(rev, sel.FieldName())
			e = sel.Operand()
		case ast.CallKind:
			call := e.AsCall()
			args := call.Args()
			if call.FunctionName() != "_[_]" || len(args) != 2 || args[1].Kind() != ast.LiteralKind {
				return nil, false
			}
			s, ok := args[1].AsLiteral().(types.String)
			if !ok {
				return nil, false
			}
			rev = append(rev, string(s))
			e = args[0]
		default:
			return nil, false
		}
	}
}

// literal converts a null, bool, int, uint, double or string literal.
func literal(e ast.Expr) (any, bool) {
	if e.Kind() != ast.LiteralKind {
		return nil, false
	}
	return native(e.AsLiteral())
}

func native(v ref.Val) (any, bool) {
	switch x := v.(type) {
	case types.Null:
		return nil, true
	case types.Bool:
		return bool(x), true
	case types.Int:
		return float64(x), true
	case types.Uint:
		return float64(x), true
	case types.Double:
		return float64(x), true
	case types.String:
		return string(x), true
	}
	return nil, false
}

// Matches evaluates the filter on one document under the package's one rule: an
// evaluation error means no match; exceeding the cost limit is ErrTooExpensive.
func (p *Program) Matches(d *Doc) (bool, error) {
	ok, _, err := p.match(d)
	return ok, err
}
