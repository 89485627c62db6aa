package rest

import "github.com/gofiber/fiber/v2"

// Replication is what GET /v1/replication reads: the state of this node's links to
// other datacenters (replication.Replicator), as a JSON-encodable value.
type Replication interface {
	ReplicationStatus() any
}

// ReplicationRoutes returns the route of GET /v1/replication over src, for
// Config.Routes; with src nil it answers that replication is not configured.
func ReplicationRoutes(src Replication) func(fiber.Router) {
	return func(r fiber.Router) {
		r.Get("/v1/replication", func(c *fiber.Ctx) error {
			if src == nil {
				return c.JSON(fiber.Map{"enabled": false, "links": []any{}})
			}
			return c.JSON(src.ReplicationStatus())
		})
	}
}

// JoinRoutes returns one Config.Routes that adds the routes of each of fns in order.
func JoinRoutes(fns ...func(fiber.Router)) func(fiber.Router) {
	return func(r fiber.Router) {
		for _, fn := range fns {
			if fn != nil {
				fn(r)
			}
		}
	}
}
