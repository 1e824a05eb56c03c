using System.Diagnostics;
using Xunit.Abstractions;

namespace IsolateGrains.Cluster.Tests;

/// <summary>A silo process dies under load: its sandboxes come back on the survivors, and no acknowledged write is lost.</summary>
[Collection(SiloClusterCollection.Name)]
public sealed class FailoverTests(SiloClusterFixture fixture, ITestOutputHelper output)
{
    private const int GrainCount = 30;
    // Short, so that a call stuck behind the dead silo's gateway is abandoned and resent soon (it would hang for
    // Orleans' 30 s response timeout); long enough that a busy 2-core machine rarely abandons a healthy call.
    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task AHardKilledSiloLosesNoAcknowledgedWrite()
    {
        await fixture.EnsureSilosAsync();
        var prefix = "failover-" + Guid.NewGuid().ToString("N")[..8];
        var streams = Enumerable.Range(0, GrainCount).Select(i => new CallStream(fixture.Client.GetGrain<IIsolateGrain>($"{prefix}-{i}"))).ToArray();

        // Every sandbox exists (one acknowledged write each) and is placed before the stream starts, so the
        // victim is chosen from where the grains really are.
        await Task.WhenAll(streams.Select(s => s.CallUntilAcknowledgedAsync(GiveUpAfter)));
        var before = await Task.WhenAll(streams.Select(s => Calls.RetryAsync(() => s.Grain.GetStatus())));
        var victim = before.GroupBy(s => s.Silo).OrderByDescending(g => g.Count()).Select(g => fixture.SiloOf(g.Key)).First()
            ?? throw new InvalidOperationException($"No running silo matches {before[0].Silo}.");
        var onVictim = Enumerable.Range(0, GrainCount).Where(i => fixture.SiloOf(before[i].Silo) == victim).ToArray();

        using var stop = new CancellationTokenSource();
        var running = streams.Select(s => s.RunAsync(stop.Token)).ToArray();
        await Task.Delay(TimeSpan.FromSeconds(3));
        var acknowledgedBeforeKill = streams.Sum(s => s.AcknowledgedCount);
        var killedAt = Stopwatch.GetTimestamp();
        fixture.Kill(victim);

        // Recovered when every grain has acknowledged a call that was sent after the kill.
        TimeSpan[] recoveries;
        while (true)
        {
            var answered = streams.Select(s => s.FirstAnswerToACallSentAfter(killedAt)).ToArray();
            if (answered.All(a => a is not null))
            {
                recoveries = [.. answered.Select(a => Stopwatch.GetElapsedTime(killedAt, a!.Value))];
                break;
            }
            if (Stopwatch.GetElapsedTime(killedAt) > GiveUpAfter)
            {
                stop.Cancel();
                await Task.WhenAll(running);
                Assert.Fail($"Grains still not answering {GiveUpAfter.TotalSeconds} s after the kill: " +
                    string.Join(", ", Enumerable.Range(0, GrainCount).Where(i => answered[i] is null)));
            }
            await Task.Delay(20);
        }
        // Some steady traffic on the survivors after recovery, then stop and let every call finish or time out.
        await Task.Delay(TimeSpan.FromSeconds(2));
        stop.Cancel();
        await Task.WhenAll(running);

        // Reading is safe to retry; it shows exactly which attempts each sandbox applied, in order.
        var journals = await Task.WhenAll(streams.Select(s => Calls.RetryAsync(() => s.Grain.Invoke(SandboxCode.ReadJournal()))));
        var after = await Task.WhenAll(streams.Select(s => Calls.RetryAsync(() => s.Grain.GetStatus())));

        output.WriteLine(fixture.Log);
        output.WriteLine($"Killed {victim.Process.Name}, which hosted {onVictim.Length} of {GrainCount} grains, after {acknowledgedBeforeKill} acknowledged calls.");
        output.WriteLine($"Recovery (kill -> every grain answered a call sent after it): {recoveries.Max().TotalMilliseconds:0} ms; " +
            $"grains that were on {victim.Process.Name}: {Spread(onVictim.Select(i => recoveries[i]))}, " +
            $"the others: {Spread(Enumerable.Range(0, GrainCount).Except(onVictim).Select(i => recoveries[i]))}");
        output.WriteLine($"Calls: {streams.Sum(s => s.AcknowledgedCount)} acknowledged, {streams.Sum(s => s.UnacknowledgedCount)} unacknowledged (timed out or failed), " +
            $"of which {Enumerable.Range(0, GrainCount).Sum(i => streams[i].AppliedButUnacknowledged(journals[i]))} were applied nonetheless.");
        output.WriteLine("Grains per silo before: " + string.Join(", ", before.GroupBy(s => fixture.SiloOf(s.Silo)?.Process.Name).Select(g => $"{g.Key} {g.Count()}")));
        output.WriteLine("Grains per silo after:  " + string.Join(", ", after.GroupBy(s => fixture.SiloOf(s.Silo)?.Process.Name).Select(g => $"{g.Key} {g.Count()}")));

        for (var i = 0; i < GrainCount; i++)
        {
            streams[i].AssertNoAcknowledgedWriteLost(journals[i], $"grain {i}");
        }
        foreach (var i in onVictim)
        {
            Assert.NotEqual(victim, fixture.SiloOf(after[i].Silo));
            Assert.Equal("storage", after[i].RestoredFrom);
        }
        Assert.All(after, s => Assert.Contains(fixture.SiloOf(s.Silo), fixture.Silos));
    }

    private static string Spread(IEnumerable<TimeSpan> times)
    {
        var sorted = times.Order().ToArray();
        return sorted.Length == 0 ? "none" : $"median {sorted[sorted.Length / 2].TotalMilliseconds:0} ms, max {sorted[^1].TotalMilliseconds:0} ms";
    }

    /// <summary>
    /// One grain's stream of calls, one at a time. Every attempt carries its own sequence number, which the sandbox
    /// appends to its journal when it applies the attempt; the reply is the sandbox's counter after it.
    /// </summary>
    private sealed class CallStream(IIsolateGrain grain)
    {
        private readonly object _gate = new();
        private readonly List<Attempt> _attempts = [];

        public IIsolateGrain Grain => grain;

        public int AcknowledgedCount
        {
            get
            {
                lock (_gate)
                {
                    return _attempts.Count(a => a.Value is not null);
                }
            }
        }

        public int UnacknowledgedCount
        {
            get
            {
                lock (_gate)
                {
                    return _attempts.Count(a => a.Value is null);
                }
            }
        }

        /// <summary>Calls until stopped: paced a little, so 30 streams load the cluster without starving it.</summary>
        public async Task RunAsync(CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                var acknowledged = await AttemptAsync();
                await Task.Delay(acknowledged ? 50 : 100, CancellationToken.None);
            }
        }

        public async Task CallUntilAcknowledgedAsync(TimeSpan giveUpAfter)
        {
            var started = Stopwatch.GetTimestamp();
            while (!await AttemptAsync())
            {
                if (Stopwatch.GetElapsedTime(started) > giveUpAfter)
                {
                    throw new TimeoutException($"{grain.GetPrimaryKeyString()} did not answer for {giveUpAfter.TotalSeconds} s.");
                }
                await Task.Delay(100);
            }
        }

        /// <summary>When the first call sent after <paramref name="timestamp"/> was acknowledged, if one was.</summary>
        public long? FirstAnswerToACallSentAfter(long timestamp)
        {
            lock (_gate)
            {
                return _attempts.FirstOrDefault(a => a.SentAt > timestamp && a.Value is not null)?.AnsweredAt;
            }
        }

        public int AppliedButUnacknowledged(int[] journal)
        {
            lock (_gate)
            {
                var unacknowledged = _attempts.Where(a => a.Value is null).Select(a => a.Sequence).ToHashSet();
                return journal.Count(unacknowledged.Contains);
            }
        }

        /// <summary>
        /// The check. A call's outcome is one of two: acknowledged (a reply arrived: with write-through snapshots the
        /// sandbox's new state was saved to Redis before the reply was sent), or unacknowledged (it timed out or
        /// failed: it may have been applied or not — it died with the silo, or ran and lost only its reply, or is
        /// still on its way). So after the kill:
        ///   1. every acknowledged attempt is in the journal: zero acknowledged writes lost;
        ///   2. every acknowledged reply equals its attempt's position in the journal + 1: the counter continued from
        ///      exactly the writes before it — nothing rolled back, nothing counted twice;
        ///   3. the journal holds only attempts we sent, each at most once, and whatever in it was not acknowledged
        ///      was an attempt that timed out or failed.
        /// Together: between two consecutive acknowledged replies v1 and v2, v2 = v1 + 1 + (the attempts applied
        /// between them, all unacknowledged) — so after recovery the next value is the last acknowledged + 1, or
        /// + 2 (+ k) only when an attempt whose reply was lost had been applied; that is asserted explicitly too.
        /// </summary>
        public void AssertNoAcknowledgedWriteLost(int[] journal, string name)
        {
            List<Attempt> attempts;
            lock (_gate)
            {
                attempts = [.. _attempts];
            }
            var bySequence = attempts.ToDictionary(a => a.Sequence);
            Assert.True(journal.Distinct().Count() == journal.Length, $"{name}: an attempt was applied twice: [{string.Join(", ", journal)}]");
            Assert.All(journal, sequence => Assert.True(bySequence.ContainsKey(sequence), $"{name}: the journal holds attempt {sequence}, which was never sent."));
            var position = journal.Select((sequence, index) => (sequence, index)).ToDictionary(p => p.sequence, p => p.index);

            var acknowledged = attempts.Where(a => a.Value is not null).ToList();
            foreach (var attempt in acknowledged)
            {
                Assert.True(position.ContainsKey(attempt.Sequence), $"{name}: acknowledged attempt {attempt.Sequence} (reply {attempt.Value}) is lost.");
                Assert.Equal(position[attempt.Sequence] + 1, attempt.Value);
            }
            foreach (var sequence in journal.Where(s => bySequence[s].Value is null))
            {
                Assert.NotNull(bySequence[sequence].Failure);
            }
            for (var k = 1; k < acknowledged.Count; k++)
            {
                var (previous, next) = (acknowledged[k - 1], acknowledged[k]);
                var appliedBetween = journal[(position[previous.Sequence] + 1)..position[next.Sequence]];
                Assert.Equal(previous.Value + 1 + appliedBetween.Length, next.Value);
                Assert.All(appliedBetween, s => Assert.Null(bySequence[s].Value));
            }
        }

        /// <summary>One attempt with its own sequence number and timeout: acknowledged, or recorded as unacknowledged.</summary>
        private async Task<bool> AttemptAsync()
        {
            Attempt attempt;
            lock (_gate)
            {
                attempt = new Attempt(_attempts.Count + 1, Stopwatch.GetTimestamp());
                _attempts.Add(attempt);
            }
            try
            {
                var value = await grain.Invoke(SandboxCode.Record(attempt.Sequence)).WaitAsync(AttemptTimeout);
                lock (_gate)
                {
                    attempt.Value = value;
                    attempt.AnsweredAt = Stopwatch.GetTimestamp();
                }
                return true;
            }
            catch (Exception e) when (Calls.IsTransient(e))
            {
                lock (_gate)
                {
                    attempt.Failure = e.GetType().Name;
                }
                return false;
            }
        }
    }

    private sealed class Attempt(int sequence, long sentAt)
    {
        public int Sequence { get; } = sequence;
        public long SentAt { get; } = sentAt;
        public int? Value { get; set; }
        public long AnsweredAt { get; set; }
        public string? Failure { get; set; }
    }
}
