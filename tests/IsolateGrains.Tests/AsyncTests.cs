namespace IsolateGrains.Tests;

/// <summary>Asynchronous guest code, asynchronous host callbacks, interleaving and cancellation.</summary>
public sealed class AsyncTests : IDisposable
{
    private readonly IsolatedRuntime _runtime = new(TestHosts.Shared);

    [Fact]
    public async Task DelaysYieldsAndChainsOfAwaitsComplete()
    {
        var start = 5;

        var result = await _runtime.InvokeAsync(async () =>
        {
            var total = start;
            await Task.Yield();
            total += 1;
            await Task.Delay(20);
            total += await Step(10);
            return total;
        });

        Assert.Equal(5 + 1 + 11, result);
    }

    [Fact]
    public async Task TasksWithoutResultsAndValueTasksWork()
    {
        var runtime = _runtime;
        await runtime.InvokeAsync(async () =>
        {
            await Task.Delay(5);
            State.Value = 7;
        });
        var fromValueTask = await runtime.InvokeAsync(() => ValueStep(3));

        Assert.Equal(7, runtime.Invoke(() => State.Value));
        Assert.Equal(4, fromValueTask);
    }

    [Fact]
    public async Task AGuestExceptionAfterAnAwaitIsReported()
    {
        var error = await Assert.ThrowsAsync<IsolatedException>(() => _runtime.InvokeAsync(async () =>
        {
            await Task.Delay(5);
            throw new InvalidOperationException("late failure");
#pragma warning disable CS0162 // The lambda must return Task<int>.
            return 0;
#pragma warning restore CS0162
        }));

        Assert.Equal(typeof(InvalidOperationException).FullName, error.GuestExceptionType);
        Assert.Equal("late failure", error.Message);
    }

    [Fact]
    public async Task AsyncMethodsOfIsolatedObjectsCanBeAwaited()
    {
        using var worker = _runtime.CreateObject<Worker>();

        var result = await worker.InvokeAsync<string>("WorkAsync", ["job", 3]);

        Assert.Equal("job x3", result);
        Assert.Equal(3, worker.Invoke<int>("Steps"));
    }

    [Fact]
    public async Task TheGuestAwaitsAnAsynchronousHostCallbackWithoutBlockingAndOtherCallsInterleave()
    {
        var runtime = _runtime;
        var release = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        runtime.RegisterCallback("slow", async (int x) => x + await release.Task);

        var pending = runtime.InvokeAsync(async () =>
        {
            State.Value = 1;
            var answer = await DotNetIsolatorHost.InvokeAsync<int>("slow", 40);
            return answer + State.Value;
        });

        // While the guest awaits the host, the sandbox takes other calls (like a JavaScript event loop).
        var interleaved = runtime.Invoke(() => State.Value += 100);
        Assert.False(pending.IsCompleted);
        release.SetResult(2);

        Assert.Equal(101, interleaved);
        Assert.Equal(42 + 101, await pending.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task AnAsynchronousCallbackMayCallBackIntoItsOwnSandbox()
    {
        var runtime = _runtime;
        runtime.RegisterCallback("roundtrip", async (int x) => x + await runtime.InvokeAsync(async () =>
        {
            await Task.Yield();
            return 1000;
        }));

        var result = await runtime.InvokeAsync(() => DotNetIsolatorHost.InvokeAsync<int>("roundtrip", 1)).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1001, result);
    }

    [Fact]
    public async Task AFailingAsynchronousCallbackSurfacesAsAHostCallbackException()
    {
        _runtime.RegisterCallback("broken", async () =>
        {
            await Task.Delay(1);
            throw new InvalidOperationException("internal detail");
        });

        var message = await _runtime.InvokeAsync(async () =>
        {
            try
            {
                await DotNetIsolatorHost.InvokeAsync("broken");
                return "no error";
            }
            catch (HostCallbackException e)
            {
                return e.Message;
            }
        }).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Contains("broken", message);
        Assert.DoesNotContain("internal detail", message);
    }

    [Fact]
    public async Task CancellationStopsWaitingAndLeavesTheSandboxUsable()
    {
        using var cancellation = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _runtime.InvokeAsync(async () =>
        {
            await Task.Delay(TimeSpan.FromMinutes(5));
            return 1;
        }, cancellation.Token));

        Assert.Equal(3, _runtime.Invoke(() => 1 + 2));
        Assert.Equal(4, await _runtime.InvokeAsync(async () =>
        {
            await Task.Delay(1);
            return 4;
        }));
    }

    [Fact]
    public void CallingAnUnfinishedAsyncMethodSynchronouslySaysToUseInvokeAsync()
    {
        using var worker = _runtime.CreateObject<Worker>();

        var error = Assert.Throws<IsolatedException>(() => worker.Invoke<string>("WorkAsync", "x", 1));

        Assert.Contains("InvokeAsync", error.Message);
    }

    private static async Task<int> Step(int value)
    {
        await Task.Delay(1);
        return value + 1;
    }

    private static async ValueTask<int> ValueStep(int value)
    {
        await Task.Yield();
        return value + 1;
    }

    public void Dispose() => _runtime.Dispose();

    private static class State
    {
        public static int Value;
    }

    public sealed class Worker
    {
        private int _steps;

        public async Task<string> WorkAsync(string name, int count)
        {
            for (var i = 0; i < count; i++)
            {
                await Task.Delay(2);
                _steps++;
            }
            return $"{name} x{count}";
        }

        public int Steps() => _steps;
    }
}
