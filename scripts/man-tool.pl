#!/usr/bin/env perl
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/man-tool.pl: reads the public headers and the man pages in man/, for
# scripts/man-check.sh (the CTest test man_pages) and for writing a new page.
#
#   man-tool.pl check  SRCDIR NMLIST      checks every page against the headers
#   man-tool.pl new    SRCDIR FN...       prints a skeleton page for FN... (the
#                                         SYNOPSIS and ERRORS filled from the headers)
#   man-tool.pl examples SRCDIR OUTDIR    writes each page's EXAMPLE to OUTDIR/PAGE.c
#
# The format it checks is described in man/README.md. In short: every exported
# function has man/man3/FN.3, either a full page or a one-line `.so man3/OTHER.3`
# link to a full page whose SYNOPSIS declares FN; the SYNOPSIS prototype equals
# the header's declaration after whitespace is normalised; the ERRORS section
# names (`.TP` then `.B ENAME`) are exactly the union of the `Errors:` lines of
# the page's functions in the headers.
use strict;
use warnings;

my @SECTIONS = ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'RETURN VALUE', 'ERRORS', 'BACKENDS',
                'EXAMPLE', 'SEE ALSO');

sub slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or die "man-tool: $path: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;
    return $text;
}

# One spelling for a prototype: single spaces, none around * ( ) , and none
# before the final semicolon.
sub norm_proto {
    my ($p) = @_;
    $p =~ s/\s+/ /g;
    $p =~ s/\s*([*(),;])\s*/$1/g;
    $p =~ s/^\s+|\s+$//g;
    return $p;
}

# The exported declarations of the headers: name -> { proto, errors (array ref
# or undef when the doc comment has no Errors: line) }. The Errors: line of a
# comment applies to every GYRE_API declaration after that comment up to the
# next blank line or comment.
sub read_headers {
    my ($srcdir) = @_;
    my %decl;
    my @headers = ("$srcdir/include/gyre.h", sort glob("$srcdir/include/gyre/*.h"));
    for my $h (@headers) {
        my @lines = split /\n/, slurp($h);
        my ($in_comment, $comment, $errors, $decl) = (0, '', undef, undef);
        for my $line (@lines) {
            if ($in_comment) {
                $comment .= "$line\n";
                if ($line =~ m{\*/}) {
                    $in_comment = 0;
                    $errors = parse_errors_line($comment, $h);
                }
                next;
            }
            if (defined $decl) {
                $decl .= " $line";
            } elsif ($line =~ m{^\s*/\*}) {
                $comment = "$line\n";
                $errors = undef;
                if ($line =~ m{\*/}) {
                    $errors = parse_errors_line($comment, $h);
                } else {
                    $in_comment = 1;
                }
                next;
            } elsif ($line =~ /^\s*$/) {
                $errors = undef;
                next;
            } elsif ($line =~ /^GYRE_API\s/) {
                $decl = $line;
            } else {
                next;
            }
            next unless $decl =~ /;/;
            my $d = $decl;
            $decl = undef;
            $d =~ s/^GYRE_API\s+//;
            $d =~ m/(gyre_\w+)\s*\(/ or die "man-tool: $h: cannot parse: $d\n";
            my $name = $1;
            (my $raw = $d) =~ s/\s+/ /g;
            $decl{$name} = { proto => norm_proto($d), raw => $raw, errors => $errors, header => $h };
        }
    }
    return \%decl;
}

# "Errors: -EINVAL, -EBUSY." or "Errors: none." (may run on over comment lines
# up to the full stop) -> ['EINVAL', 'EBUSY'] or []; undef when absent.
sub parse_errors_line {
    my ($comment, $h) = @_;
    return undef unless $comment =~ /\bErrors:\s*([^.]*)\./s;
    my $list = $1;
    $list =~ s/\n\s*\*\s*/ /g;
    $list =~ s/^\s+|\s+$//g;
    return [] if $list eq 'none';
    my @names;
    for my $item (split /\s*,\s*/, $list) {
        $item =~ /^-(E[A-Z0-9]+)$/ or die "man-tool: $h: bad Errors: item '$item'\n";
        push @names, $1;
    }
    return \@names;
}

# Splits a roff macro line's arguments ("quoted" or bare words).
sub roff_args {
    my ($s) = @_;
    my @a;
    while ($s =~ /\G\s*(?:"((?:[^"]|"")*)"|(\S+))/gc) {
        my $arg = defined $1 ? $1 : $2;
        $arg =~ s/""/"/g;
        push @a, $arg;
    }
    return @a;
}

sub unescape {
    my ($s) = @_;
    $s =~ s/\\&//g;
    $s =~ s/\\-/-/g;
    $s =~ s/\\e/\\/g;
    $s =~ s/\\\(aq/'/g;
    $s =~ s/\\\(dq/"/g;
    $s =~ s/\\ / /g;
    $s =~ s/\\f[BIRP]//g;
    return $s;
}

# A page as { sections => { NAME => text }, order => [names] }.
sub read_page {
    my ($path) = @_;
    my (%sec, @order, $cur);
    for my $line (split /\n/, slurp($path)) {
        if ($line =~ /^\.SH\s+"?([^"]+?)"?\s*$/) {
            $cur = $1;
            push @order, $cur;
            $sec{$cur} = '';
            next;
        }
        $sec{$cur} .= "$line\n" if defined $cur;
    }
    return { sections => \%sec, order => \@order };
}

# The prototypes of a SYNOPSIS: .B/.BI/.BR lines joined until one ends in ");".
# Preprocessor lines (#include, and #define for a constant the page documents)
# are no part of a prototype.
sub synopsis_protos {
    my ($text) = @_;
    my (@protos, $cur);
    for my $line (split /\n/, $text) {
        next unless $line =~ /^\.(B|BI|BR|I|IR|RB)\s+(.*)$/;
        my $args = $2;
        next if $args =~ /^"?#\s*(?:include|define)\b/;
        my $piece = unescape(join('', roff_args($args)));
        $cur = defined $cur ? "$cur $piece" : $piece;
        if ($cur =~ /\);\s*$/) {
            push @protos, norm_proto($cur);
            $cur = undef;
        }
    }
    return @protos;
}

# The error names of an ERRORS section: a .TP (or .TQ, for several names that share
# one meaning) followed by .B ENAME.
sub page_errors {
    my ($text) = @_;
    my @names;
    my @lines = split /\n/, $text;
    for my $i (0 .. $#lines - 1) {
        next unless $lines[$i] =~ /^\.T[PQ]\s*$/;
        push @names, $1 if $lines[$i + 1] =~ /^\.B\s+"?(E[A-Z0-9]+)"?\s*$/;
    }
    return @names;
}

sub link_target {
    my ($path) = @_;
    my $text = slurp($path);
    # Comment lines (the SPDX header) may stand before the one .so request.
    $text =~ s/\A(?:\.\\"[^\n]*\n)+//;
    return $1 if $text =~ /\A\.so\s+(man\d\/\S+)\s*\n?\z/;
    return undef;
}

sub cmd_check {
    my ($srcdir, $nmlist) = @_;
    my $decl = read_headers($srcdir);
    my @exported = grep { length } split /\n/, slurp($nmlist);
    s/@.*// for @exported;
    my %exported = map { $_ => 1 } @exported;
    my @fail;
    my $mandir = "$srcdir/man/man3";
    my %pagefns; # full page -> functions it declares
    my $pages = 0;

    for my $fn (sort keys %exported) {
        my $d = $decl->{$fn};
        if (!$d) {
            push @fail, "$fn: exported but not declared with GYRE_API in include/";
            next;
        }
        push @fail, "$fn: no 'Errors:' line in its doc comment ($d->{header})"
            unless defined $d->{errors};
        my $page = "$mandir/$fn.3";
        if (!-f $page) {
            push @fail, "$fn: no page man/man3/$fn.3";
            next;
        }
        $pages++;
        my $full = $page;
        if (defined(my $t = link_target($page))) {
            $full = "$srcdir/man/$t";
            if (!-f $full || defined link_target($full)) {
                push @fail, "$fn.3: .so $t is not a full page";
                next;
            }
        }
        push @{ $pagefns{$full} }, $fn;
    }
    for my $page (sort glob("$mandir/*.3")) {
        (my $fn = $page) =~ s{.*/(.*)\.3$}{$1};
        push @fail, "man3/$fn.3: no exported function $fn" unless $exported{$fn};
    }
    for my $page (sort keys %pagefns) {
        (my $short = $page) =~ s{.*/man/}{};
        my $p = read_page($page);
        my @missing = grep { !defined $p->{sections}{$_} } @SECTIONS;
        push @fail, "$short: missing section(s): " . join(', ', @missing) if @missing;
        my @seen = grep { my $s = $_; grep { $_ eq $s } @SECTIONS } @{ $p->{order} };
        my @want = grep { my $s = $_; grep { $_ eq $s } @seen } @SECTIONS;
        push @fail, "$short: sections out of order: @seen" if "@seen" ne "@want";
        my %protos;
        for my $proto (synopsis_protos($p->{sections}{SYNOPSIS} // '')) {
            $proto =~ /(gyre_\w+)\(/ or do { push @fail, "$short: SYNOPSIS: '$proto'"; next };
            $protos{$1} = $proto;
        }
        my %want_err;
        my $name = unescape($p->{sections}{NAME} // '');
        for my $fn (@{ $pagefns{$page} }) {
            my $d = $decl->{$fn};
            if (!defined $protos{$fn}) {
                push @fail, "$short: SYNOPSIS does not declare $fn";
            } elsif ($protos{$fn} ne $d->{proto}) {
                push @fail, "$short: SYNOPSIS of $fn differs from the header:\n"
                    . "    page:   $protos{$fn}\n    header: $d->{proto}";
            }
            push @fail, "$short: NAME does not list $fn" unless $name =~ /\b\Q$fn\E\b/;
            $want_err{$_} = 1 for @{ $d->{errors} // [] };
        }
        for my $fn (sort keys %protos) {
            push @fail, "$short: SYNOPSIS declares $fn, whose man3/$fn.3 does not lead here"
                unless grep { $_ eq $fn } @{ $pagefns{$page} };
        }
        my %got_err = map { $_ => 1 } page_errors($p->{sections}{ERRORS} // '');
        my $want = join(', ', sort keys %want_err) || 'none';
        my $got = join(', ', sort keys %got_err) || 'none';
        push @fail, "$short: ERRORS lists $got; the headers' Errors: lines say $want"
            if $want ne $got;
        push @fail, "$short: EXAMPLE has no .EX/.EE program"
            unless ($p->{sections}{EXAMPLE} // '') =~ /^\.EX[ \t]*\n.*^\.EE[ \t]*$/ms;
    }
    print "man-check: $_\n" for @fail;
    printf "%d functions, %d pages (%d full pages, %d .so links)\n", scalar @exported, $pages,
        scalar keys %pagefns, $pages - scalar keys %pagefns;
    return @fail ? 1 : 0;
}

sub cmd_examples {
    my ($srcdir, $outdir) = @_;
    my $n = 0;
    for my $page (sort glob("$srcdir/man/man[137]/*.[137]")) {
        next if defined link_target($page);
        my $p = read_page($page);
        my $ex = $p->{sections}{EXAMPLE} // next;
        next unless $ex =~ /^\.EX\s*\n(.*?)^\.EE\s*$/ms;
        my $code = $1;
        next unless $code =~ /\bmain\s*\(/; # section 1 examples are shell commands
        my $out = '';
        for my $line (split /\n/, $code) {
            $out .= unescape($line) . "\n";
        }
        (my $base = $page) =~ s{.*/}{};
        open(my $fh, '>', "$outdir/$base.c") or die "man-tool: $outdir/$base.c: $!\n";
        print $fh $out;
        close $fh;
        $n++;
    }
    print "$n\n";
    return 0;
}

# A declaration as .BI lines: the text bold, parameter names italic, broken
# after a comma once a line passes 60 characters.
sub synopsis_lines {
    my ($raw) = @_;
    my @tok = $raw =~ /(\w+|\s+|.)/g;
    my ($depth, $bold, $out, $len, @args) = (0, "", "", 0);
    my $flush = sub {
        my $last = shift;
        push @args, "\"$bold\"" if length $bold || $last;
        $out .= (@args == 1 ? '.B ' : '.BI ') . join(' ', @args) . "\n";
        @args = ();
        $bold = '';
        $len = 0;
    };
    for my $i (0 .. $#tok) {
        my $t = $tok[$i];
        $depth++ if $t eq '(';
        $depth-- if $t eq ')';
        my ($next) = grep { $tok[$_] !~ /^\s+$/ } ($i + 1 .. $#tok);
        my $n = defined $next ? $tok[$next] : '';
        my $prev = $i > 0 ? $tok[$i - 1] : '';
        my $is_name = $t =~ /^[a-z_]\w*$/ && $t ne 'void' && $t !~ /^gyre_/ &&
            (($depth == 1 && ($n eq ',' || $n eq ')') && $prev =~ /^[\s*]$/) ||
             ($depth == 2 && $prev eq '*' && $n eq ')'));
        if ($is_name) {
            push @args, "\"$bold\"", $t;
            $bold = '';
        } elsif ($t eq ' ' && $prev eq ',' && $len > 60 && $depth == 1) {
            $flush->(0);
            $bold = '        ';
        } else {
            $bold .= $t;
        }
        $len += length $t;
    }
    $flush->(1);
    return $out;
}

sub cmd_new {
    my ($srcdir, @fns) = @_;
    my $decl = read_headers($srcdir);
    my %err;
    for my $fn (@fns) {
        die "man-tool: $fn is not declared in include/\n" unless $decl->{$fn};
        $err{$_} = 1 for @{ $decl->{$fn}{errors} // [] };
    }
    print ".TH $fns[0] 3 YYYY-MM-DD \"gyre\" \"gyre Manual\"\n.SH NAME\n";
    print join(', ', map { "$_" } @fns), " \\- WHAT\n.SH SYNOPSIS\n.nf\n.B #include <gyre.h>\n";
    for my $fn (@fns) {
        print ".PP\n", synopsis_lines($decl->{$fn}{raw});
    }
    print ".fi\n.SH DESCRIPTION\n.SH RETURN VALUE\n.SH ERRORS\n";
    print ".TP\n.B $_\n\n" for sort keys %err;
    print ".SH BACKENDS\n.SH EXAMPLE\n.EX\n#include <gyre.h>\n\nint main(void)\n{\n"
        . "    return 0;\n}\n.EE\n.SH SEE ALSO\n.BR gyre (7)\n";
    return 0;
}

my $cmd = shift @ARGV // '';
exit cmd_check(@ARGV) if $cmd eq 'check' && @ARGV == 2;
exit cmd_examples(@ARGV) if $cmd eq 'examples' && @ARGV == 2;
exit cmd_new(@ARGV) if $cmd eq 'new' && @ARGV >= 2;
die "usage: man-tool.pl check SRCDIR NMLIST | new SRCDIR FN... | examples SRCDIR OUTDIR\n";
