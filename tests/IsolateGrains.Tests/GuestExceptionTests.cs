namespace IsolateGrains.Tests;

/// <summary>Exceptions thrown by guest code arrive as <see cref="IsolatedException"/>s with the guest's details.</summary>
public sealed class GuestExceptionTests : IDisposable
{
    private readonly IsolatedRuntime _runtime = new(TestHosts.Shared);

    [Fact]
    public void GuestExceptionCarriesTypeMessageAndGuestStackTrace()
    {
        var reason = "the answer is not 41";

        var error = Assert.Throws<IsolatedException>(() => _runtime.Invoke(() => Thrower.Fail(reason)));

        Assert.Equal(typeof(InvalidOperationException).FullName, error.GuestExceptionType);
        Assert.Equal(reason, error.Message);
        Assert.False(error.IsFatal);
        Assert.Contains(nameof(Thrower.Fail), error.GuestStackTrace);
        var text = error.ToString();
        Assert.Contains("System.InvalidOperationException", text);
        Assert.Contains("guest stack trace", text);
        Assert.Contains(nameof(Thrower.Fail), text);
    }

    [Fact]
    public void TheSandboxKeepsItsStateAfterAGuestException()
    {
        var runtime = _runtime;
        runtime.Invoke(() => { Thrower.Counter = 5; });
        Assert.Throws<IsolatedException>(() => runtime.Invoke(() => Thrower.Fail("boom")));

        Assert.Equal(6, runtime.Invoke(() => ++Thrower.Counter));
        Assert.Equal(0, runtime.ResetCount);
    }

    [Fact]
    public void InnerExceptionsAppearInTheGuestDetails()
    {
        var error = Assert.Throws<IsolatedException>(() => _runtime.Invoke(() =>
        {
            try
            {
                return int.Parse("not a number");
            }
            catch (FormatException e)
            {
                throw new ArgumentException("wrapping", e);
            }
        }));

        Assert.Equal(typeof(ArgumentException).FullName, error.GuestExceptionType);
        Assert.Contains("FormatException", error.GuestDetails);
    }

    public void Dispose() => _runtime.Dispose();

    private static class Thrower
    {
        public static int Counter;

        public static int Fail(string reason) => throw new InvalidOperationException(reason);
    }
}
