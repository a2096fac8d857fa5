//go:build ((linux && !android) || (darwin && !ios) || windows) && (amd64 || arm64) && !novulkan

package vulkan

import "fmt"

// session is what Trainer and GPTTrainer share: the device (the caller's
// or their own), the memory arenas, the command pool, the command buffers
// that move the staged state both ways, and the state's bookkeeping.
//
// synced: the host's state holds the device's as of the last download or
// upload, and the staging buffer holds the same bits; a step first uploads
// the host's state if the caller changed it since. failed is the first
// device error: a trainer whose state may not be the device's refuses to
// go on (sticky), and closed refuses everything with ErrClosed.
type session struct {
	dev     *Device
	ownDev  bool
	devMem  *arena
	hostMem *arena
	cmdPool uintptr // the trainer's own command pool

	upload, download *recorder

	synced bool
	closed bool
	failed error
}

// openDevice takes c's device, which must be alive, or opens one with c's
// device options (closed by close).
func (s *session) openDevice(c config) error {
	if c.device != nil {
		if err := c.device.alive(); err != nil {
			return err
		}
		s.dev = c.device
		return nil
	}
	d, err := Open(c.deviceOpts...)
	if err != nil {
		return err
	}
	s.dev, s.ownDev = d, true
	return nil
}

// newArenas creates the (empty) device and host arenas.
func (s *session) newArenas() {
	s.devMem, s.hostMem = &arena{d: s.dev}, &arena{d: s.dev, host: true}
}

// commitArenas allocates and binds the memory of both arenas.
func (s *session) commitArenas() error {
	if err := s.devMem.commit(); err != nil {
		return err
	}
	return s.hostMem.commit()
}

// usable reports why the trainer cannot touch its device memory: closed,
// its device closed (a sticky failure), or an earlier failure.
func (s *session) usable() error {
	if s.closed {
		return ErrClosed
	}
	if s.failed == nil {
		if err := s.dev.alive(); err != nil {
			s.failed = err
		}
	}
	return s.failed
}

// pushState uploads the staged state, which stage has just written from
// the host's.
func (s *session) pushState(stage func()) error {
	stage()
	if err := s.dev.submit(s.upload.cb); err != nil {
		return err
	}
	s.synced = true
	return nil
}

// syncIn uploads the host's state through push if the caller changed it
// (changed reports whether it differs from the staged bits) since it was
// last synced; a step that follows trains from it.
func (s *session) syncIn(changed func() bool, push func() error) error {
	if err := s.usable(); err != nil {
		return err
	}
	if !s.synced || !changed() {
		return nil
	}
	return push()
}

// sync downloads the device's state to the staging buffer and unstage
// copies it into the host's, if a step ran since the last copy. A failed
// copy is sticky.
func (s *session) sync(unstage func()) error {
	if s.synced && s.failed == nil {
		return nil
	}
	if s.closed {
		return nil // close synced what it could
	}
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.dev.submit(s.download.cb); err != nil {
		s.failed = fmt.Errorf("vulkan: copying the state back: %w", err)
		return s.failed
	}
	unstage()
	s.synced = true
	return nil
}

// runStep submits a recorded step, what (e.g. "step 7"), which changes the
// device's state. A failed submission is sticky: the step may have run in
// part, so the device's state is unknown.
func (s *session) runStep(r *recorder, what string) error {
	s.synced = false
	if err := s.dev.submit(r.cb); err != nil {
		s.failed = fmt.Errorf("vulkan: %s: %w", what, err)
		return s.failed
	}
	return nil
}

// close runs sync (when the trainer got as far as recording its steps),
// then releases the command pool (with its command buffers), what release
// frees, the arenas, and the device if the session opened it.
func (s *session) close(recorded bool, sync func() error, release func()) error {
	if s.closed {
		return nil
	}
	if recorded {
		sync()
	}
	s.closed = true
	d := s.dev
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if !d.closed {
		call(d.fn.deviceWaitIdle, d.handle)
		if s.cmdPool != 0 {
			call(d.fn.destroyCommandPool, d.handle, s.cmdPool, 0) // frees its command buffers
		}
		release()
		for _, a := range []*arena{s.devMem, s.hostMem} {
			if a != nil {
				a.destroy()
			}
		}
	}
	d.mu.Unlock()
	if s.ownDev {
		return d.Close()
	}
	return nil
}
