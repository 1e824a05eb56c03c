namespace IsolateGrains.Tests;

/// <summary>Guest console output reaches the host's sink, labelled with the sandbox and the stream.</summary>
public sealed class GuestOutputTests
{
    [Fact]
    public void StandardOutputAndErrorReachTheSinkAsLines()
    {
        using var runtime = new IsolatedRuntime(TestHosts.Shared);

        runtime.Invoke(() =>
        {
            Console.WriteLine("hello from the guest");
            Console.Out.Write("two ");
            Console.Out.WriteLine("parts");
            Console.Error.WriteLine("something went wrong");
        });

        var lines = TestHosts.Output.For(runtime.Name);
        Assert.Contains(new GuestOutput(runtime.Name, GuestOutputStream.StandardOutput, "hello from the guest"), lines);
        Assert.Contains(new GuestOutput(runtime.Name, GuestOutputStream.StandardOutput, "two parts"), lines);
        Assert.Contains(new GuestOutput(runtime.Name, GuestOutputStream.StandardError, "something went wrong"), lines);
    }

    [Fact]
    public void TheDefaultSinkPrefixesLinesWithTheSandboxName()
    {
        var original = Console.Out;
        using var captured = new StringWriter();
        Console.SetOut(captured);
        try
        {
            GuestOutput.WriteToConsole(new GuestOutput("sandbox-9", GuestOutputStream.StandardOutput, "hi"));
        }
        finally
        {
            Console.SetOut(original);
        }

        Assert.Equal("[sandbox-9] hi" + Environment.NewLine, captured.ToString());
    }
}
