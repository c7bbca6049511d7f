#!/usr/bin/perl
# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: the gyre authors
# scripts/mutant.pl: reads one mutant file (test/mutants/*.mutant) and checks
# or applies it to a copy of the source tree. scripts/mutants.sh is its one
# caller; the file format is described in docs/testing.md.
#
#   mutant.pl fields FILE          prints `what`, `file` and `select`, one a line
#   mutant.pl check FILE SRC_ROOT  exit 0 if each original text occurs exactly
#                                  once in SRC_ROOT/<file>, else 3 ("stale")
#   mutant.pl apply FILE SRC_ROOT  the same check, then writes each mutant text
#                                  in place of its original
#
# Exit status 2 means the mutant file itself is malformed. Plain perl (Debian's
# Essential perl-base), no modules: the script must run on a bare machine.
use strict;
use warnings;

sub malformed {
    my ($path, $msg) = @_;
    print STDERR "mutant.pl: $path: $msg\n";
    exit 2;
}

# Returns (\%fields, @hunks); each hunk is [original, mutant], the whole
# lines between the markers, each with its newline (an empty mutant deletes
# the original lines).
sub parse {
    my ($path) = @_;
    my (%f, @hunks, $sect);

    open(my $fh, '<', $path) or malformed($path, "cannot read: $!");
    while (my $line = <$fh>) {
        chomp $line;
        if ($line =~ /^--- (original|mutant|end)$/) {
            my $ok = !defined $sect ? $1 eq 'original'
                   : $sect eq 'original' ? $1 eq 'mutant'
                   : $sect eq 'mutant' ? $1 ne 'mutant'
                   : 0;
            malformed($path, "'--- $1' out of order") if !$ok;
            push @hunks, [[], []] if $1 eq 'original';
            $sect = $1;
            next;
        }
        if (!defined $sect) {
            next if $line =~ /^\s*(#.*)?$/;
            $line =~ /^(what|file|select):\s*(\S.*?)\s*$/
                or malformed($path, "unknown header line: $line");
            malformed($path, "'$1' given twice") if exists $f{$1};
            $f{$1} = $2;
        } elsif ($sect eq 'end') {
            malformed($path, "text after '--- end'") if $line !~ /^\s*$/;
        } else {
            push @{$hunks[-1][$sect eq 'original' ? 0 : 1]}, $line;
        }
    }
    close $fh;
    for my $k (qw(what file select)) {
        malformed($path, "no '$k:' line") if !exists $f{$k};
    }
    malformed($path, "no '--- end' line") if !defined $sect || $sect ne 'end';
    malformed($path, "file must be a relative path inside the tree")
        if $f{file} =~ m{^/|(^|/)\.\.(/|$)};
    for my $h (@hunks) {
        $h = [join('', map { "$_\n" } @{$h->[0]}), join('', map { "$_\n" } @{$h->[1]})];
        malformed($path, "empty original text") if $h->[0] !~ /\S/;
        malformed($path, "a mutant text equals its original") if $h->[0] eq $h->[1];
    }
    return (\%f, @hunks);
}

sub slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or return undef;
    local $/;
    my $text = <$fh>;
    close $fh;
    return $text;
}

# Where the original lines occur in text (starting at a line start): the
# offset of their one occurrence, or undef with a message saying how the
# mutant is stale.
sub locate {
    my ($text, $orig) = @_;
    my ($pos, $first, $count) = (0, -1, 0);

    return (undef, 'the file does not exist') if !defined $text;
    while (($pos = index($text, $orig, $pos)) >= 0) {
        if ($pos == 0 || substr($text, $pos - 1, 1) eq "\n") {
            $first = $pos if $count == 0;
            $count++;
        }
        $pos++;
    }
    return ($first, '') if $count == 1;
    return (undef, "the original text occurs $count times (must be exactly once)");
}

my ($cmd, $path, $root) = @ARGV;
$cmd //= '';
die "usage: mutant.pl {fields FILE|check FILE SRC_ROOT|apply FILE SRC_ROOT}\n"
    if !(($cmd eq 'fields' && defined $path) ||
         (($cmd eq 'check' || $cmd eq 'apply') && defined $root));
my ($f, @hunks) = parse($path);

if ($cmd eq 'fields') {
    print "$f->{what}\n$f->{file}\n$f->{select}\n";
    exit 0;
}

# Every original is located in the unmodified text; they must not overlap.
my $target = "$root/$f->{file}";
my $text = slurp($target);
my @at;
for my $k (0 .. $#hunks) {
    my ($pos, $why) = locate($text, $hunks[$k][0]);
    if (!defined $pos) {
        my $which = @hunks > 1 ? " (original " . ($k + 1) . ")" : "";
        print STDERR "stale: $f->{file}$which: $why\n";
        exit 3;
    }
    push @at, [$pos, $k];
}
@at = sort { $a->[0] <=> $b->[0] } @at;
for my $k (1 .. $#at) {
    malformed($path, "two original texts overlap")
        if $at[$k - 1][0] + length($hunks[$at[$k - 1][1]][0]) > $at[$k][0];
}
exit 0 if $cmd eq 'check';

# From the end, so the earlier offsets stay valid.
for my $p (reverse @at) {
    my ($orig, $mut) = @{$hunks[$p->[1]]};
    substr($text, $p->[0], length $orig) = $mut;
}
open(my $out, '>', $target) or die "mutant.pl: cannot write $target: $!\n";
print $out $text;
close $out or die "mutant.pl: cannot write $target: $!\n";
exit 0;
