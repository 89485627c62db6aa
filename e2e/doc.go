// Package e2e holds the container tests of aerolithsDB: the image from the Dockerfile, run
// as the three-node cluster of deploy/docker-compose.yml, driven from the host through the
// docker and docker-compose command-line tools and the REST API.
//
// The tests have the build tag e2e, so `make test` does not run them; `make e2e` builds the
// image and runs them. They cover: the cluster forms and every node serves every write; a
// node cut off from its peers (docker network disconnect of the raft network) refuses
// linearizable operations while the two others keep serving, and catches up when
// reconnected; a node killed with SIGKILL under write load loses nothing and catches up
// after a restart.
//
// Each test starts its own cluster under a unique compose project name and removes its
// containers, networks and volumes when it ends, passed or failed. The package holds no
// production code.
package e2e
