package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"
)

// Mail is one reminder e-mail. It holds no BSN and no resident name: the
// owner opens the callback in the front office by its reference.
type Mail struct {
	To      string
	Subject string
	Body    string
}

// Mailer sends mail.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// LogMailer logs the mail it would send (recipient and subject, not the
// body), for the demo and for installations without a mail server.
type LogMailer struct {
	Logger *slog.Logger
}

// Send logs m.
func (l LogMailer) Send(ctx context.Context, m Mail) error {
	l.Logger.InfoContext(ctx, "reminder e-mail (not sent)", "to", m.To, "subject", m.Subject)
	return nil
}

// SMTPMailer sends mail with net/smtp: STARTTLS when the server offers it,
// PLAIN authentication when a user name is configured (net/smtp refuses it
// without TLS except to localhost).
type SMTPMailer struct {
	Config SMTPConfig
}

// Send delivers m, within ctx and Config.Timeout.
func (s *SMTPMailer) Send(ctx context.Context, m Mail) error {
	from, err := mail.ParseAddress(s.Config.From)
	if err != nil {
		return fmt.Errorf("smtp: From: %w", err)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("smtp: To: %w", err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("smtp: subject has a line break")
	}
	timeout := s.Config.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Config.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	host, _, _ := net.SplitHostPort(s.Config.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(nil); err != nil {
			return fmt.Errorf("smtp: STARTTLS: %w", err)
		}
	}
	if s.Config.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Config.Username, s.Config.Password, host)); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("smtp: MAIL: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("smtp: RCPT: %w", err)
	}
	wc, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	msg := "From: " + from.String() + "\r\n" +
		"To: " + to.String() + "\r\n" +
		"Subject: " + mime.QEncoding.Encode("utf-8", m.Subject) + "\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\n" +
		strings.ReplaceAll(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n", "\r\n") + "\r\n"
	if _, err := wc.Write([]byte(msg)); err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	return c.Quit()
}
